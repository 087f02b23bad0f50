"""One decoder per model family: raw network outputs -> ``Detections`` in network-input pixels.

Every decoder is a function with the signature of ``Decoder``::

    decode(outputs: list[np.ndarray], spec: ModelSpec, conf_threshold: float) -> list[RawDetections]

``outputs`` are the session outputs in graph order, each with a leading batch axis ``B``;
the result has one entry per batch item.  Boxes are in the *network input* pixel frame
(the letterboxed image); the detector maps them back to the original frame and runs NMS.
"""
