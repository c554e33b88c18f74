"""Dataset preparation: NVIDIA's multi-resolution TFRecord datasets (no TensorFlow but in the
writer and `info --verify=full`).

  main.py            the command line (`sg2tf-dataset`, data/dataset_tool.py)
  create.py          create_from_images / _npy / _mnist_idx: sources -> records, in threads
  source_images.py   finding, decoding and normalising source images
  labels.py          labels from JSON/CSV/.npy files, subfolders or IDX files
  levels.py          the resolution pyramid, as NVIDIA's tool computes it
  writer.py          writes a dataset all at once or not at all
  staging.py         output folders that appear only when complete
  extract.py         the `info` and `extract` commands
  quickstart.py      the quickstart's images (LFW faces bundled with scikit-image)
"""
