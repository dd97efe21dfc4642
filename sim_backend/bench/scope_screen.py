"""What a scope's screen shows: its graticule and the last record of each displayed channel,
as an image file (the screenshot an instrument returns to `:DISPlay:DATA?`).

Vertical: each channel's range spans the 8 divisions around its offset; horizontal: the record
fills the 10 divisions. The image is drawn with Pillow, which writes every format the scopes
offer (BMP, GIF, JPEG, PNG, TIFF).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from sim_backend.bench.scope import OscilloscopePanel

WIDTH_PX, HEIGHT_PX = 1024, 768
DIVISIONS_X, DIVISIONS_Y = 10, 8
#: Trace colours by channel (the Infiniium's: yellow, green, blue, red).
COLOURS = {1: (255, 235, 0), 2: (0, 220, 0), 3: (80, 140, 255), 4: (255, 60, 60)}
FORMATS = {"BMP": "BMP", "GIF": "GIF", "JPG": "JPEG", "PNG": "PNG", "TIF": "TIFF"}


def screen_image(panel: OscilloscopePanel, image_format: str, *, inverted: bool = False) -> bytes:
    """The screen as an image file in `image_format` (a key of FORMATS); `inverted`: dark on
    white, as the scopes' 'inksaver' option prints."""
    image = Image.new("RGB", (WIDTH_PX, HEIGHT_PX), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    for i in range(1, DIVISIONS_X):
        draw.line([(i * WIDTH_PX // DIVISIONS_X, 0), (i * WIDTH_PX // DIVISIONS_X, HEIGHT_PX)], fill=(60, 60, 60))
    for i in range(1, DIVISIONS_Y):
        draw.line([(0, i * HEIGHT_PX // DIVISIONS_Y), (WIDTH_PX, i * HEIGHT_PX // DIVISIONS_Y)], fill=(60, 60, 60))
    for number, record in sorted(panel.records.items()):
        channel = panel.channels.get(number)
        if channel is None or not channel.displayed or record.codes.size < 2:
            continue
        x_px = np.linspace(0, WIDTH_PX - 1, record.codes.size)
        y_px = HEIGHT_PX / 2 - (record.volts - channel.offset_v) / channel.range_v * HEIGHT_PX
        draw.line(list(zip(x_px.tolist(), np.clip(y_px, 0, HEIGHT_PX - 1).tolist())),
                  fill=COLOURS.get(number, (255, 255, 255)))
    if inverted:
        image = Image.eval(image, lambda value: 255 - value)
    buffer = io.BytesIO()
    image.save(buffer, format=FORMATS[image_format])
    return buffer.getvalue()
