"""Body and hand motion (mediapipe pose + hands) and its OpenPose skeleton drawing, the condition a stock
ControlNet OpenPose model reads next to HelloMeme."""
