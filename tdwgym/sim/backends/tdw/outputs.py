"""The TDW backend's reading of TDW's output data: object states, segmentation colours, contacts and
images (:class:`OutputParsing`, a part of :class:`~tdwgym.sim.backends.tdw.backend.TDWBackend`)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from tdwgym.sim.backends.base import BackendError, Contact, ObjectState
from tdwgym.sim.backends.tdw.scene_commands import AVATAR_ID
from tdwgym.sim.geometry import rotate

DEPTH_NEAR, DEPTH_FAR = 0.1, 100.0
"""TDW's ``_depth`` shader encodes depth between these planes, whatever the camera's clipping planes."""


class OutputParsing:
    """The output-parsing half of :class:`~tdwgym.sim.backends.tdw.backend.TDWBackend` (its methods use the
    backend's attributes, set in its ``__init__``)."""

    def _parse_states(self, resp: list[bytes]) -> None:
        od = self._tdw["output_data"]
        positions: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        velocities: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for r in resp[:-1]:
            tag = r[4:8]
            if tag == b"tran":
                t = od.Transforms(r)
                for i in range(t.get_num()):
                    positions[t.get_id(i)] = (
                        np.array(t.get_position(i), dtype=np.float64),
                        np.array(t.get_rotation(i), dtype=np.float64),
                    )
            elif tag == b"rigi":
                rb = od.Rigidbodies(r)
                for i in range(rb.get_num()):
                    velocities[rb.get_id(i)] = (
                        np.array(rb.get_velocity(i), dtype=np.float64),
                        np.array(rb.get_angular_velocity(i), dtype=np.float64),
                    )
        if not positions:
            return
        states = {}
        for oid, offset in self._pivot_offset.items():
            if oid not in positions:
                continue
            pivot, q = positions[oid]
            v, w = velocities.get(oid, (np.zeros(3), np.zeros(3)))
            root_offset = self._parts[oid][0].offset
            if root_offset.any():  # a compound: the first part's velocity is its own centre's, not the object's
                v = v + np.cross(w, rotate(q, -root_offset))
            states[oid] = ObjectState(
                id=oid, position=pivot + rotate(q, offset), rotation=q, velocity=v, angular_velocity=w
            )
        self._states = states
        self._states_fresh = True

    def _parse_segmentation_colors(self, resp: list[bytes]) -> None:
        od = self._tdw["output_data"]
        changed = False
        for r in resp[:-1]:
            if r[4:8] == b"segm":
                seg = od.SegmentationColors(r)
                for i in range(seg.get_num()):
                    red, green, blue = (int(c) for c in seg.get_object_color(i)[:3])
                    self._seg_codes[int(seg.get_object_id(i))] = (red << 16) | (green << 8) | blue
                    changed = True
        if changed:
            self._rebuild_seg_lut()

    def _rebuild_seg_lut(self) -> None:
        self._seg_lut = {code: self._owner[tid] for tid, code in self._seg_codes.items() if tid in self._owner}

    def _contacts(self, resp: list[bytes]) -> list[Contact]:
        od = self._tdw["output_data"]
        owner = self._owner
        # (a, b) -> {(reporter, state): (impulse, point, normal)}; both bodies may report the same collision.
        acc: dict[tuple[int, int], dict[Any, tuple[float, np.ndarray, np.ndarray]]] = {}
        for r in resp[:-1]:
            tag = r[4:8]
            if tag == b"coll":
                c = od.Collision(r)
                collider, collidee = owner.get(c.get_collider_id()), owner.get(c.get_collidee_id())
                if collider is None or collidee is None or collider == collidee:
                    continue  # the camera's collider, or two parts of one compound
                impulse = float(np.linalg.norm(c.get_impulse()))
                point, normal = self._first_contact(c)
                # Unity's contact normal points from the other body (collidee) to the reporting one (collider).
                a, b = (collider, collidee) if collider < collidee else (collidee, collider)
                if a != collider:
                    normal = -normal
                key, sub = (a, b), c.get_state()
            elif tag == b"enco":
                e = od.EnvironmentCollision(r)
                oid = owner.get(e.get_object_id())
                if oid is None:
                    continue
                impulse = 0.0  # TDW reports no impulse for collisions with the room
                point, normal = self._first_contact(e)
                key, sub = (0, oid), (e.get_state(), e.get_floor())
                normal = -normal  # from the object (b) to the room (a)
            else:
                continue
            subs = acc.setdefault(key, {})
            if sub not in subs or impulse > subs[sub][0]:
                subs[sub] = (impulse, point, normal)
        contacts = []
        for (a, b), subs in sorted(acc.items()):
            best = max(subs.values(), key=lambda v: v[0])
            contacts.append(
                Contact(a=a, b=b, impulse=float(sum(v[0] for v in subs.values())), point=best[1], normal=best[2])
            )
        return contacts

    @staticmethod
    def _first_contact(c: Any) -> tuple[np.ndarray, np.ndarray]:
        if c.get_num_contacts() == 0:
            return np.zeros(3), np.zeros(3)
        return (np.array(c.get_contact_point(0), dtype=np.float64), np.array(c.get_contact_normal(0), dtype=np.float64))

    def _decode_images(
        self, resp: list[bytes], width: int, height: int, passes: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        from PIL import Image

        od = self._tdw["output_data"]
        images = None
        for r in resp[:-1]:
            if r[4:8] == b"imag":
                images = od.Images(r)
                if images.get_avatar_id() == AVATAR_ID:
                    break
        if images is None:
            raise BackendError("the TDW build sent no Images output for send_images")
        if (images.get_width(), images.get_height()) != (width, height):
            raise BackendError(
                f"asked TDW for {width}x{height} images but got {images.get_width()}x"
                f"{images.get_height()}; the screen may be smaller than the requested size"
            )
        out: dict[str, np.ndarray] = {}
        for i in range(images.get_num_passes()):
            mask = images.get_pass_mask(i)
            data = images.get_image(i)
            if mask == "_depth":
                out["depth"] = (
                    self._tdw["TDWUtils"]
                    .get_depth_values(
                        data,
                        depth_pass="_depth",
                        width=width,
                        height=height,
                        near_plane=DEPTH_NEAR,
                        far_plane=DEPTH_FAR,
                    )
                    .astype(np.float32)
                )
            elif mask in ("_img", "_id"):
                with Image.open(io.BytesIO(data.tobytes())) as img:
                    rgb = np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
                if mask == "_img":
                    out["rgb"] = rgb
                else:
                    out["segmentation"] = self._segmentation(rgb)
        missing = [p for p in passes if p not in out]
        if missing:
            raise BackendError(f"the TDW build sent no image for passes {missing}")
        return out

    def _segmentation(self, id_pass: np.ndarray) -> np.ndarray:
        codes = (id_pass[..., 0].astype(np.int64) << 16) | (id_pass[..., 1].astype(np.int64) << 8) | id_pass[..., 2]
        out = np.zeros(codes.shape, dtype=np.int32)
        for code, sid in self._seg_lut.items():
            out[codes == code] = sid
        return out
