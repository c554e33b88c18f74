"""Small utilities with one home each: files (atomic writes, sha256, disk errors, run-directory
lock) and safe_pickle (the only way sg2tf reads pickles, .npy and .npz files). Neither imports
TensorFlow, so the tools can use them before TensorFlow starts."""
