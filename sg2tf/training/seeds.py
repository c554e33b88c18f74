"""Fixed offsets that keep sg2tf's random streams apart, named once.

Changing one changes which numbers a run draws (a resumed run would no longer continue the
same stream, the snapshot grid of existing runs would change), so they are constants.
"""

# Key (sampling.fold) of the path-length pass that runs inside the G main phase when path-
# length regularization is not lazy (config d without lazy regularization). It draws its own
# latents and noise; a key outside sampling.py's sub-stream keys (0..6) and the augmentation
# keys (1001..1004) makes them independent of the main pass's draws from the same seed.
PL_IN_G_MAIN_KEY = 99

# The snapshot grid's latents are np.random.RandomState(seed + GRID_SEED_OFFSET): a stream
# apart from the other users of --seed (keras.utils.set_random_seed, the tf.random.Generator
# of the phases, dataset shuffling), so the grid is not, say, the first training minibatch;
# the same for every snapshot of a run and across resumes.
GRID_SEED_OFFSET = 1000
