"""Nodes "Audio to Face Motion" and "Combine Face Motion": a talking head from speech (ARKit expression mode)."""
from __future__ import annotations

from comfy_api.latest import io

from hellomeme_core.audio.motion import AUTO, METHODS
from hellomeme_core.driving_video import OFFICIAL_FPS

from .comfy_glue.audio_motion import audio_motion, combine
from .comfy_glue.errors import named_errors
from .comfy_glue.socket_types import FaceMotion

AUDIO_NODE, COMBINE_NODE = "Audio to Face Motion", "Combine Face Motion"
PD_FGC_NOTE = ("Works with Load HelloMeme Models' expression_mode 'arkit' only: the official default 'pd_fgc' reads "
               "the expression from the driving video's PD-FGC embedding, which audio cannot give.")


class AudioToFaceMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeAudioToFaceMotion",
            display_name=AUDIO_NODE,
            category="HelloMeme",
            description="Makes the mouth move with speech: jaw and lip ARKit coefficients (jawOpen, mouthClose, funnel, "
                        "pucker, smile, stretch, lips) per video frame, blended like real speech (coarticulation). "
                        "Only the mouth means something: give it to Combine Face Motion for head pose and eyes. "
                        + PD_FGC_NOTE,
            inputs=[
                io.Audio.Input("audio", tooltip="Speech: from Load Audio, or Load Driving Video's audio."),
                io.Float.Input("fps", default=OFFICIAL_FPS, min=1.0, max=120.0, step=0.01, tooltip=
                               "Frames per second of the video to make: 8 is HelloMeme's official rate. Use the same "
                               "number in Create Video."),
                io.Combo.Input("method", options=list(METHODS), default=AUTO, tooltip=
                               "phonemes: recognises the English (en-US) words offline (pocketsphinx), times each word's "
                               "sounds to the audio and shapes the mouth for each: the most exact for English (give the "
                               "transcript for better still). loudness+formants: any language or "
                               "singing, from how loud and which vowel colour (less detail, no lip shapes for /f/ or /s/). "
                               "auto: phonemes when they cover the speech, else loudness+formants (the output 'info' "
                               "says which was used)."),
                io.Float.Input("strength", default=1.0, min=0.0, max=2.0, step=0.05, tooltip=
                               "How wide the mouth moves: 1 as designed, less for subtle talking, more for a bigger "
                               "mouth (values stay within 0..1)."),
                io.Float.Input("smoothing", default=0.5, min=0.0, max=1.0, step=0.05, tooltip=
                               "How much neighbouring mouth shapes blend: 0 = crisp (15 ms), 1 = lazy (120 ms). 0.5 "
                               "looks like natural speech."),
                io.String.Input("transcript", default="", multiline=True, optional=True,
                                placeholder="optional: the English words spoken, e.g. Hello, I saw a cat.", tooltip=
                                "Optional: the English words spoken in the audio (punctuation is ignored; write numbers "
                                "as words). With them the phonemes method times each word's own sounds to the audio "
                                "(forced alignment), so the lips close on every m, b and p: the most exact. Empty: "
                                "the words are recognised from the audio first. A word pocketsphinx's dictionary "
                                "lacks stops with an error naming it; 'info' says which phone source was used."),
            ],
            outputs=[
                FaceMotion.Output(display_name="face_motion", tooltip=
                                  "The mouth motion, one frame per 1/fps seconds of audio (pose still, eyes open): "
                                  "connect to Combine Face Motion's mouth_motion."),
                io.Audio.Output(display_name="audio", tooltip=
                                "The same audio cut to exactly the motion's length (frames / fps): connect it to "
                                "Create Video so the sound stays in sync."),
                io.String.Output(display_name="info", tooltip=
                                 "Which method was used and why (for phonemes also where the phones came from: "
                                 "transcript aligned, words aligned, or allphone, and the words), frames and seconds."),
            ],
        )

    @classmethod
    def execute(cls, audio, fps: float = OFFICIAL_FPS, method: str = AUTO, strength: float = 1.0,
                smoothing: float = 0.5, transcript: str = "") -> io.NodeOutput:
        with named_errors(AUDIO_NODE):
            return io.NodeOutput(*audio_motion(audio, fps, method, strength, smoothing, transcript or ""))


class CombineFaceMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeCombineFaceMotion",
            display_name=COMBINE_NODE,
            category="HelloMeme",
            description="Head pose, eyes and the rest of the face from one motion (a driving video, or a built-in idle "
                        "motion: gentle head sway and blinks), the mouth from another (Audio to Face Motion). The pose "
                        "motion's frames are kept unchanged apart from the mouth. " + PD_FGC_NOTE
                        + " Set expression_mode to 'arkit' in Load HelloMeme Models.",
            inputs=[
                FaceMotion.Input("mouth_motion", tooltip="From Audio to Face Motion."),
                FaceMotion.Input("pose_motion", optional=True, tooltip=
                                 "Head pose and eyes: Extract Face Motion on a driving video (its frames and fps are "
                                 "kept; use the same clip for Render Pose Condition). Leave empty for the built-in "
                                 "idle motion, as long as the audio."),
                FaceMotion.Input("reference_motion", optional=True, tooltip=
                                 "With no pose_motion: Extract Face Motion on the reference portrait, so the idle head "
                                 "sways around the portrait's own pose and position."),
                io.Int.Input("idle_seed", default=0, min=0, max=2**31 - 1, optional=True, tooltip=
                             "With no pose_motion: which idle motion (same seed, same sway and blinks)."),
            ],
            outputs=[FaceMotion.Output(display_name="face_motion", tooltip=
                                       "Pose and eyes of pose_motion (or idle), mouth from the audio: connect to Render "
                                       "Pose Condition and Apply HelloMeme (expression_mode arkit).")],
        )

    @classmethod
    def execute(cls, mouth_motion, pose_motion=None, reference_motion=None, idle_seed: int = 0) -> io.NodeOutput:
        with named_errors(COMBINE_NODE):
            return io.NodeOutput(combine(mouth_motion, pose_motion, reference_motion, idle_seed))


NODES = [AudioToFaceMotion, CombineFaceMotion]
