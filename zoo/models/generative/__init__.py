"""Image-generating models: autoencoders, the VAE, GANs, and the encoder/decoder bodies they share."""

from zoo.models.generative.autoencoder import Autoencoder, ConvAutoencoder
from zoo.models.generative.dcgan import DCGAN
from zoo.models.generative.gan import GAN
from zoo.models.generative.vae import VAE

__all__ = ["DCGAN", "GAN", "VAE", "Autoencoder", "ConvAutoencoder"]
