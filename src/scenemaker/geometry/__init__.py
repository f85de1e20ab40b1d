"""Small pure geometry functions: rotations, transforms, canonical frames, boxes, ICP."""

from .canonical import canonical_transform, canonicalize_mesh
from .rotations import geodesic_angle, matrix_to_rot6d, rot6d_to_matrix, yaw_matrix
from .transforms import apply_transform, pose_matrix

__all__ = [
    "apply_transform",
    "canonical_transform",
    "canonicalize_mesh",
    "geodesic_angle",
    "matrix_to_rot6d",
    "pose_matrix",
    "rot6d_to_matrix",
    "yaw_matrix",
]
