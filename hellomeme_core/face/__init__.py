"""Driving motion: face analysis backends, head pose, expression coefficients, smoothing.

Modules (import them directly; this package imports nothing so ``pose_condition`` can use ``head_pose``):
- ``types``: ``FaceMotion`` (the FACE_MOTION socket value). ``arkit``: the 51 coefficient names ``ARKIT_NAMES``.
- ``analyzer``: ``load_face_analyzer(backend, device, model_dir)``, ``extract_face_motion(...)``.
- ``frames``: what every backend takes and returns (``FaceAnalyzer``, ``FrameAnalysis``, ``check_frames``).
- ``mediapipe_backend`` / ``landmark_pose`` / ``expression``: the default backend's landmarks, pose, coefficients.
- ``official_backend``: the HelloMeme ONNX toolkit. ``pd_fgc_expression``: the PD-FGC embedding (official default
  expression input) for both backends. ``face_choice``: which face of several (largest / n-th from the left).
- ``head_pose``: official 3DMM conventions (Euler order, camera, focal length, translation).
- ``crop``: the official 512 clip crop. ``paste_back``: generated crops back into the full picture.
  ``face_parts``: eye/mouth crops for CLIP. ``preview``: overlays.
- ``no_face``: hold / interpolate / drop / error. ``smoothing``: One Euro. ``retarget``: relative motion, condition images.
- ``insightface``: the insightface packs' SCRFD detector and ArcFace recognizer (identity similarity, following one
  person, the ``insightface`` detector choice), read with onnxruntime without the insightface package.
- ``native_logs``: keeps mediapipe's native start-up log lines off stderr (the command line uses it).
"""
