"""Images from storage to tensors: listing an ImageFolder by names, WebDataset tar shards,
decoding any Pillow mode to L/RGB, per-sample seeds, samplers, collation, and the recipe's
per-image transforms.

May import archdsl.lang.errors and archdsl.atomic (and numpy, PIL, torch; `webdataset` never: shards are read
with tarfile). Never imports training/, evaluate/, cli/, compiler/, interop/ or api:
training/ and evaluate/ import this room, not the other way round.

Where each piece runs:
- listing.py (main process, once): names and labels, no pixels.
- decode.py, datasets.py (DataLoader workers): open a file lazily, let the transform choose the
  crop, then decode and convert; a bad file becomes a `BadSample`, never an exception.
- sampler.py (main process): which (index, epoch) each rank reads, resumable at any sample.
- collate.py (workers): `Batch(x uint8, y, bad)`.
- shards.py / pack.py: the same dataset contract over tar shards, and writing them.
"""
