"""What the API needs of the fleet's camera definitions (``argus.fleet`` provides it).

The alert service of a fleet edits cameras for admins: it checks a definition, publishes
it on the fleet topic (the workers apply it without restarting), and lists what is
there.  The API knows only this protocol: the definitions' validation lives with the
configuration (``argus``), which the API must not import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


@runtime_checkable
class FleetAdmin(Protocol):
    """The fleet topic's camera definitions, for the API."""

    def cameras(self) -> list[dict[str, Any]]:
        """Every camera's definition (``FleetCamera``'s fields; a source shows its credential
        references, ``${CAM_...}``, and nothing else in a secret's place)."""
        ...

    def refused(self) -> dict[str, list[str]]:
        """Definitions on the topic that did not validate, by camera id: why."""
        ...

    def problems(self, camera_id: str, body: Mapping[str, Any]) -> list[str]:
        """What is wrong with ``body`` as ``camera_id``'s definition (empty: valid)."""
        ...

    def put(self, camera_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Publish a valid definition; its ``FleetCamera`` fields.

        Raises:
            alerts.control.ControlPublishError: The broker did not take it.
        """
        ...

    def remove(self, camera_id: str) -> bool:
        """Remove a camera (``False``: unknown).

        Raises:
            alerts.control.ControlPublishError: The broker did not take it.
        """
        ...


class FleetCameraIn(BaseModel):
    """A camera's definition as an admin sends it (checked whole by the fleet's rules: the
    camera as in a config file, with its rules; the source without a password in it)."""

    model_config = ConfigDict(extra="forbid")

    camera: dict[str, Any] = Field(
        description="The camera as in a config file's cameras[] (its id is the path's). "
        "A password in the source is written as ${NAME} (the worker's environment) or "
        "${file:/path} (a secret file on the worker)."
    )
    rules: list[dict[str, Any]] = Field(
        default_factory=list, description="Its rules, as in a config file's rules[]."
    )
    model: str | None = Field(
        None, max_length=128, description="The model it needs (null: any that serves it)."
    )


class FleetCamera(BaseModel):
    """A camera of the fleet."""

    camera_id: str
    camera: dict[str, Any] = Field(
        description="The camera (its source names its credentials by reference: ${CAM_...})."
    )
    rules: list[dict[str, Any]]
    model: str | None
    updated_at: float = Field(description="When it was published, UNIX seconds.")
    partition: int = Field(description="Its partition of the fleet topic.")


class FleetCameras(BaseModel):
    """The fleet's cameras and the definitions refused."""

    cameras: list[FleetCamera]
    refused: dict[str, list[str]] = Field(
        description="Definitions on the topic that do not validate (camera id: why); their "
        "cameras keep the previous valid definition, if any."
    )


class FleetProblems(BaseModel):
    """A definition refused (422)."""

    detail: str
    problems: list[str]
