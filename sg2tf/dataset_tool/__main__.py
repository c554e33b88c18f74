"""python -m sg2tf.dataset_tool: the dataset tool (sg2tf-dataset)."""

from sg2tf.dataset_tool import main

if __name__ == "__main__":
  main.main()
