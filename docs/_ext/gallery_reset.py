"""Reset hook run by sphinx-gallery before each example (see ``reset_modules`` in conf.py)."""


def reset_torch(gallery_conf, fname):
    """One torch thread and a fixed seed, so every example starts from the same state.

    The examples train small networks, on which intra-op threads only add overhead;
    on a busy two-core machine a thread waiting for a core slows every small
    operation down.
    """
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
