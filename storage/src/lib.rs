//! pixelparty storage (in progress).
