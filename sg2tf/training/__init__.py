"""StyleGAN2 training: config, losses, the tf.distribute loop, checkpoints and monitoring.

    from sg2tf.training import config, distribute, loop
    cfg = config.resolve_config(cfg)           # checks it against the dataset (no TF work)
    strategy = distribute.make_strategy(cfg.strategy)
    loop.train(cfg, strategy)

`train_main.py` does exactly this from command-line flags (see sg2tf/flags.py). This package
imports nothing heavy by itself, so flag handling can fail fast before TensorFlow starts.
"""
