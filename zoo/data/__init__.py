"""The data: datasets (MNIST, text folders, CSV, IMDB, image folders), the preprocessing a run
records, photos of digits brought into MNIST's form, image files read safely, inputs prepared for
a model, and the training input pipeline."""
