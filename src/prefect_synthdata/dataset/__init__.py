"""The canonical dataset: layout, merged COCO annotations and the checksummed manifest."""
