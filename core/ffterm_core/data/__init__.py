"""The data room: reading the four datasets (MNIST, FashionMNIST, SVHN, CIFAR10) from their files, the
label embedding that FF and BP/FF write into an image's first pixels, and the prepared tensors a trainer
draws its batches from (normalised once, kept on the training device). It knows nothing of runs."""
