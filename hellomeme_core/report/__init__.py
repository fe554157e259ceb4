"""Motion-fidelity report: how closely a generated video follows its driving clip (pose, expression,
mouth, landmarks, jitter, identity, delay), with plots and JSON. Pure numpy/cv2/matplotlib."""
