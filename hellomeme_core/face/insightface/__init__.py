"""insightface model packs (``antelopev2``, ``buffalo_l``) read with onnxruntime, without the insightface package.

The insightface wheel requires ``opencv-python``, which would put a second cv2 beside the
``opencv-contrib-python`` mediapipe needs; so the packs' ONNX files are read here, by our own code:

- ``packs``: finding a pack folder, telling its detector from its recognizer by their signatures.
- ``detector``: SCRFD (3 strides x scores / boxes / 5 keypoints), letterbox, anchor decoding, NMS.
- ``recognition``: the ArcFace 5-point alignment (112 x 112) and the 512-d embedding.
- ``identity``: identity similarity (CSIM) of frames against a reference, drift warning.
- ``follow``: choosing one person by identity and following them through a clip.

Import the modules directly; this package imports nothing (onnxruntime loads only when a pack is used).
"""
