"""Node "Load Driving Video": a driving clip at the official 8 fps (the official pipeline's frames by default),
with the audio that plays under the kept frames."""
from __future__ import annotations

from comfy_api.latest import io

from hellomeme_core.driving_video import OFFICIAL_FPS

from .comfy_glue.driving_video import FRAME_SELECTIONS, OFFICIAL_SELECTION, fingerprint, load, missing_video, video_files
from .comfy_glue.errors import named_errors

NODE = "Load Driving Video"
MAX_SECONDS = 24 * 3600.0


class LoadDrivingVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeLoadDrivingVideo",
            display_name=NODE,
            category="HelloMeme",
            description="Loads a driving video as the official HelloMeme pipeline reads it: resampled to 8 frames per "
                        "second with the frames the official ffmpeg -r 8 keeps (or, as an option, the frames nearest "
                        "in time), optionally a part of it, and the audio that plays under those frames. Give 'fps' "
                        "and 'audio' to Create Video so the result keeps the driving clip's timing and sound.",
            inputs=[
                io.Combo.Input("video", options=video_files(), upload=io.UploadType.video, tooltip=
                               "A video in ComfyUI's input folder (mp4, mov, webm, ...); the upload button adds one."),
                io.Float.Input("target_fps", default=OFFICIAL_FPS, min=0.0, max=240.0, step=0.01, tooltip=
                               "Frames per second to take from the clip: 8 is the official rate (fewer frames, the "
                               "motion the weights were trained on). 0 keeps the clip's own rate. Cannot be above it."),
                io.Float.Input("start_seconds", default=0.0, min=0.0, max=MAX_SECONDS, step=0.01, tooltip=
                               "Where to start in the clip, in seconds (0 = the beginning). The audio starts there too."),
                io.Float.Input("max_seconds", default=0.0, min=0.0, max=MAX_SECONDS, step=0.01, tooltip=
                               "How many seconds to take from the start (0 = to the end of the clip). Shorter = "
                               "fewer frames to generate."),
                # Last, so that saved workflows keep their widget order; optional, so that API prompts saved
                # before it existed still run (with the official default).
                io.Combo.Input("frame_selection", options=list(FRAME_SELECTIONS), default=OFFICIAL_SELECTION,
                               optional=True, tooltip=
                               "Which source frames become the output frames. 'official (ffmpeg -r)': the frames the "
                               "official pipeline gets from ffmpeg -r 8 (the same inputs to the networks). ffmpeg passes "
                               "the first frames straight through, then at 8 fps each picture shows the moment 0.14-0.20 s "
                               "before its time (measured: 0.157 s on average from a 25 fps clip, 0.171 s from 15 fps, "
                               "0.154 s from 30 fps), so the picture lags the sound by that much, and the clip gets up to "
                               "2 frames longer than the video. 'nearest in time' (beyond the official): each picture is "
                               "within half a source frame of its time, so the picture does not lag the sound."),
                io.Int.Input("max_side", default=0, min=0, max=16384, step=8, optional=True, tooltip=
                             "Longest side of the loaded frames in pixels; 0 = the clip's own size (as officially). "
                             "Frames are scaled down as they are decoded, so a long 4K clip (100 MB a frame as an "
                             "image) fits in memory: 1280 is plenty for face motion. Never enlarges."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="The chosen frames (for Extract Face Motion)."),
                io.Audio.Output(display_name="audio", tooltip=
                                "The clip's audio from start_seconds, exactly as long as the frames last (frame_count / "
                                "fps); empty (None) when the clip has no audio track. Connect it to Create Video."),
                io.Float.Output(display_name="fps", tooltip=
                                "The frame rate of the images (target_fps, or the clip's own rate for 0): the result "
                                "video must use it to stay in time with the audio."),
                io.Int.Output(display_name="frame_count", tooltip="How many frames were loaded."),
            ],
        )

    @classmethod
    def validate_inputs(cls, video: str | None = None) -> bool | str:
        # Only the file is checked here; the numbers keep ComfyUI's own min/max checks. A linked video (no
        # constant at queue time) is checked when the node runs.
        if video is None:
            return True
        problem = missing_video(video)
        return f"{NODE}: {problem}" if problem else True

    @classmethod
    def fingerprint_inputs(cls, video: str | None = None, **kwargs) -> str:
        return fingerprint(video)

    @classmethod
    def execute(cls, video: str, target_fps: float = OFFICIAL_FPS, start_seconds: float = 0.0,
                max_seconds: float = 0.0, frame_selection: str = OFFICIAL_SELECTION, max_side: int = 0) -> io.NodeOutput:
        with named_errors(NODE):
            return io.NodeOutput(*load(video, target_fps, start_seconds, max_seconds, frame_selection, max_side))


NODES = [LoadDrivingVideo]
