"""Building blocks shared by every HelloMeme network, with the official state-dict key names."""
