# Copyright (c) dcama_mm contributors. All rights reserved.
"""The functions behind ``tools/dataset_converters/``.

- :mod:`.coco_masks`: COCO ``segmentation`` fields to class masks and label
  maps.
- :mod:`.coco20i_index`: reading COCO instance files and the reference
  split files, writing the class index files.
- :mod:`.coco20i`: converting one COCO 2014 split for COCO-20i.
"""
