"""DICOM adapter: de-identification, safe parsing and batch processing (pydicom, numpy)."""
