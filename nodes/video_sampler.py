"""Node "HelloMeme Video Sampler": the official video schedules (v1/v2 two stages, v3-v5 recursive) with ComfyUI's samplers."""
from __future__ import annotations

import comfy.samplers
from comfy_api.latest import io

from .comfy_glue.errors import named_errors
from .comfy_glue.video_sampler import NODE, sample_video


class HelloMemeVideoSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeVideoSampler",
            display_name=NODE,
            category="HelloMeme",
            description="Samples the video as the official pipeline of the loaded version does. v3-v5: the clip is cut "
                        "into 12-frame chunks at stride 11; the chunks' first and last frames are generated first, as a "
                        "shorter video one level deeper (recursively), and become the motion pads of their chunks; then "
                        "every chunk is denoised with its pads and shared frames are averaged. v1/v2: every frame is first "
                        "made alone by the image UNet (up to 10 steps, each from the previous frame), then the clip is "
                        "re-noised from those frames and denoised in 12-frame windows overlapping by 4. Any ComfyUI "
                        "sampler and scheduler; Cancel works between chunks. The window settings of Apply HelloMeme "
                        "Temporal are not used here.",
            inputs=[
                io.Model.Input("model", tooltip="The MODEL output of Apply HelloMeme Temporal (any version; v5c runs the v5 "
                                                "schedule, as it has no official video pipeline)."),
                io.Conditioning.Input("positive", tooltip="The prompt (the same one HelloMeme Reference used)."),
                io.Conditioning.Input("negative", tooltip="The negative prompt (the official pipelines use an empty one)."),
                io.Latent.Input("latent_image", tooltip="One latent per driving frame (Empty Latent Image with batch_size = "
                                                        "the frame count)."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Noise seed. Each level takes the noise of its frames by position, as officially."),
                io.Int.Input("steps", default=25, min=1, max=10000, tooltip="Steps per level (official: 25; the v1/v2 "
                                                                                  "image stage takes min(10, steps))."),
                io.Float.Input("cfg", default=1.5, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance scale (official: 1.5)."),
                io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS, default="dpmpp_2m_sde", tooltip=
                               "Any ComfyUI sampler. Official: dpmpp_2m_sde for v5/v5b (DPM-Solver++ SDE, the default "
                               "here, as 'auto' loads v5 for videos), euler for v3/v4 (reproduces the official result). "
                               "The log says when your choice differs from the loaded version's."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="sgm_uniform",
                               tooltip="The sigma schedule of every level. Official: sgm_uniform with dpmpp_2m_sde "
                                       "(v5's timestep spacing), normal with euler (v3/v4)."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="1.0 samples from noise (official); lower values refine latent_image."),
            ],
            outputs=[io.Latent.Output(display_name="latent", tooltip="The video's latents, one per driving frame.")],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent_image, seed: int, steps: int, cfg: float, sampler_name: str,
                scheduler: str, denoise: float = 1.0) -> io.NodeOutput:
        with named_errors(NODE):
            result, _ = sample_video(model, positive, negative, latent_image, seed, steps, cfg, sampler_name, scheduler, denoise)
        return io.NodeOutput(result)


NODES = [HelloMemeVideoSampler]
