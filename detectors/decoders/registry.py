"""Layout name -> decoder function.

The NanoDet decoder lives in ``detectors.decoders.nanodet`` and is imported lazily, on
first use, so this module works (for the YOLO layouts) even where it is absent.
"""

from __future__ import annotations

import importlib
import logging
from typing import cast

from detectors.decoders.raw import Decoder
from detectors.decoders.yolo import decode_yolov5, decode_yolov8

logger = logging.getLogger(__name__)


class UnknownLayoutError(KeyError):
    """No decoder is registered for a layout name (or its module cannot be imported)."""

    def __init__(self, layout: str, known: list[str]):
        super().__init__(f"no decoder for layout {layout!r}; known layouts: {', '.join(known)}")
        self.layout = layout
        self.known = known

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


# Eagerly available decoders.
_DECODERS: dict[str, Decoder] = {
    "yolov5": decode_yolov5,
    "yolov8": decode_yolov8,
}

# Lazily imported decoders: layout -> (module, function name).
_LAZY: dict[str, tuple[str, str]] = {
    "nanodet": ("detectors.decoders.nanodet", "decode_nanodet"),
}


def known_layouts() -> list[str]:
    """All layout names that can be asked for, sorted."""
    return sorted({*_DECODERS, *_LAZY})


def register_decoder(layout: str, decoder: Decoder) -> None:
    """Register (or replace) the decoder of ``layout``."""
    _DECODERS[layout] = decoder
    _LAZY.pop(layout, None)


def get_decoder(layout: str) -> Decoder:
    """The decoder function of ``layout`` (``"nanodet"``, ``"yolov5"``, ``"yolov8"``).

    Raises:
        UnknownLayoutError: unknown name, or the lazily imported module/function is missing
            (the import error is chained).
    """
    decoder = _DECODERS.get(layout)
    if decoder is not None:
        return decoder
    if layout not in _LAZY:
        raise UnknownLayoutError(layout, known_layouts())
    module_name, func_name = _LAZY[layout]
    try:
        module = importlib.import_module(module_name)
        decoder = cast(Decoder, getattr(module, func_name))
    except (ImportError, AttributeError) as e:
        raise UnknownLayoutError(layout, known_layouts()) from e
    _DECODERS[layout] = decoder
    logger.debug("loaded decoder %s.%s for layout %r", module_name, func_name, layout)
    return decoder


__all__ = ["UnknownLayoutError", "get_decoder", "known_layouts", "register_decoder"]
