//! pixelparty engine (in progress).
