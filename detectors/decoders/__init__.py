"""One decoder per model family: raw network outputs -> ``RawDetections`` (network-input px).

Every decoder has the signature of ``detectors.decoders.raw.Decoder``::

    decode(outputs: list[np.ndarray], spec: ModelSpec, conf_threshold: float) -> list[RawDetections]

``outputs`` are the session outputs in graph order, each with a leading batch axis ``B``;
the result has one entry per batch item.  Boxes are in the *network input* pixel frame
(the letterboxed image); the detector maps them back to the original frame and runs NMS.
"""
