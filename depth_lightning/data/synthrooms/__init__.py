"""SynthRooms: procedurally ray-cast indoor rooms, written in the NYU Depth V2 labeled layout.

The embedded default dataset, so the pipeline trains and tests with no download. Each frame is a
box-shaped room (floor, four walls, ceiling) with furniture boxes, seen through NYU's Kinect
intrinsics from a hand-held camera pose. The distribution is made to resemble NYU's on purpose:
Eigen's coarse network learns depth from global layout cues (a floor receding to a far wall,
furniture standing on the floor, light falling off), and those only exist when the camera is held
and aimed the way people aim a Kinect into a room. Textures live in world coordinates, so they are
foreshortened by perspective like real ones.

Rendering is vectorised numpy ray casting at 320x240 (all pixels against the room box, then each
furniture box over the screen rectangle it can cover), upsampled to 640x480 (nearest). ``rawDepths``
gets Kinect-like holes (projector shadows left of occluding edges, thin edge dropouts, dark or
specular blobs, far range, an invalid left border); ``depths`` has none.

The file is one HDF5 file laid out like ``nyu_depth_v2_labeled.mat`` as h5py sees it: ``images``
(N, 3, 640, 480) uint8, ``depths`` / ``rawDepths`` (N, 640, 480) float32 metres, ``scenes`` and
``sceneTypes`` (1, N) object references to uint16 char arrays in ``#refs#``.

Modules, in the order a frame is made: `scene` (what a room is made of), `furniture` and
`layout` (building a room from its seed), `camera` (a hand-held pose), `grid` and `raycast`
(rays and hits), `materials`, `lighting` and `shading` (the linear image), `sensor` (exposure to
noise), `kinect` (raw-depth holes), `frames` (one frame, the frame plan), `writer` (the HDF5
file, worker pool, cache), `preview` and `cli`. numpy only on the rendering side.

Optional features (`features`, the setting ``data.source.features``; default none: ``[]`` is the
v1 generator byte for byte), each in its own module and random stream: `spaces` (offices,
corridors, classrooms, labs, basements with partitions, doorways, drop ceilings and pipes),
`clutter` (small objects, thin-legged chairs, loaded shelves), `camerafx` (the `camera`
feature: exposure, white balance, blur, vignetting, noise) and `depthnoise` (the `kinect`
feature: disparity steps and noise on ``rawDepths`` only).
"""

from .cli import main
from .features import DEFAULT_FEATURES, FEATURES
from .frames import GENERATOR_VERSION, render_frame
from .kinect import MAX_DEPTH
from .preview import save_preview
from .scene import SCENE_TYPES
from .spaces import SPACE_TYPES
from .writer import ensure_synthrooms, generate, synthrooms_path

__all__ = ["DEFAULT_FEATURES", "FEATURES", "GENERATOR_VERSION", "MAX_DEPTH", "SCENE_TYPES",
           "SPACE_TYPES", "ensure_synthrooms", "generate", "main", "render_frame", "save_preview",
           "synthrooms_path"]
