"""Differential privacy: the Gaussian mechanism on the item Gram for the closed-form models (``gram``), DP-SGD for
the neural joint model (``sgd``), and the membership-inference audit (``membership``).

Import the submodules themselves: this package imports nothing, so a closed-form stage never loads torch.
"""
