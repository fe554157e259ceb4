"""The 51 expression coefficients' names: ARKit's blendshapes, in the order the official network is read.

Both the motion container (``types``) and the geometric estimator (``expression``) name their columns
from here, so neither has to import the other for it.
"""
from __future__ import annotations

# The 51 ARKit blendshapes (Apple's list without tongueOut) in the order face-capture tools export them
# (Live Link Face). The official ARKit ONNX output (hello_arkit_blendshape.onnx, 51 unnamed values) is
# read in this order. That is an ASSUMPTION: the official code never names its outputs, only passes the
# vector on as ``drive_coeff``, so neither the order nor which of a Left/Right pair is which is confirmed.
# The official adapters consume the vector as is, so the assumption only matters for reading the
# values by name (motion JSON, relative expression) and for mixing backends.
ARKIT_ORDER_NOTE = (
    "the official ARKit network's 51 outputs are read in this (Live Link Face export) order; the official "
    "code never names them, so the order and the Left/Right sides of those outputs are an assumption")
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
)

