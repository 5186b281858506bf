"""A variational autoencoder on MNIST, packaged for a reproducible DVC pipeline."""
