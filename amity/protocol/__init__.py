"""Pure protocol code: documents, validation, canonical JSON and signatures. No I/O."""
