"""Synthetic receipts in the competition layout: the kit's embedded default data.

Each receipt is laid out line by line (shop header, item/qty/price columns, totals, dashed
separators, card slip, footer), rendered word by word, then warped (slight rotation and
perspective) onto a background, blurred, noised and JPEG-compressed. By default the receipts
are Korean, as the competition's are: Hangul words in NanumGothic (the font the
koreanize-matplotlib wheel ships), with Latin words in the competition's share (ko 90.5%, en
9.5% of the words whose language is given) and each word's ``language`` true to its text
(``None`` for numbers and symbols); ``language="en"`` gives the English receipts in
matplotlib's DejaVu fonts.
A word's polygon is the tight box of its visible ink (alpha >= ``INK_ALPHA``) carried
through the same warp, so it covers the glyphs and nothing more. Everything is drawn from
``numpy.random.default_rng([seed, split, index])``: the same seed gives the same files.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from kit.data.annotations import SPLITS, ImageRecord, Word, available_splits, split_paths, write_annotations
from kit.errors import InputError
from kit.files import write_text
from kit.paths import COMPETITION_DIR, SYNTH_COUNTS, SYNTH_DIR, project_path
from kit.workers import pool_context

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
#: The Hangul font's wheel (MIT; the NanumGothic files in it are NHN's, now Naver's, free Nanum fonts).
KOREAN_FONT_PACKAGE = "koreanize-matplotlib"
#: Per language: body fonts, and each one's bold face (file names; Korean ones in the wheel's fonts/).
FONTS = {
    "en": {"DejaVuSansMono.ttf": "DejaVuSansMono-Bold.ttf", "DejaVuSans.ttf": "DejaVuSans-Bold.ttf",
           "DejaVuSerif.ttf": "DejaVuSerif-Bold.ttf"},
    "ko": {"NanumGothic.ttf": "NanumGothicBold.ttf", "NanumGothicLight.ttf": "NanumGothicBold.ttf",
           "NanumGothicBold.ttf": "NanumGothicExtraBold.ttf"},
}
LANGUAGES = tuple(FONTS)
#: Paper widths (px, before the warp) per language: the Korean receipts are wider, so that their words come
#: out nearer the competition's height (boxes ~26 px) once a receipt is scaled to MAX_SIDE.
PAPER_WIDTH = {"en": (360, 620), "ko": (560, 860)}
#: The share of Latin words among the words with a language on the competition's receipts.
EN_SHARE = 0.095
HANGUL = re.compile("[\uac00-\ud7a3]")
LATIN = re.compile("[A-Za-z]")
#: Glyph coverage (0-255) from which a pixel counts as ink of its word.
INK_ALPHA = 64
MAX_SIDE = 1280
MANIFEST = "synth.json"

SHOPS = ("GREEN MART", "CAFE LUNA", "DAILY FRESH", "MOONLIGHT BAKERY", "SEOUL KITCHEN", "CITY PHARMACY",
         "BLUE OCEAN SUSHI", "HAPPY BOOKS", "CORNER STORE 24", "PARK'S DELI")
STREETS = ("MAIN ST", "HARBOR RD", "GANGNAM-DAERO", "KING AVE", "RIVERSIDE BLVD", "MARKET LANE")
ITEMS = ("AMERICANO", "CAFE LATTE", "BAGEL", "CREAM CHEESE", "MILK 1L", "WHITE BREAD", "ORANGE JUICE",
         "GREEN TEA", "CHOCO COOKIE", "BANANA", "APPLE 3EA", "RAMEN", "KIMBAP", "WATER 500ML", "SOAP",
         "TOOTHPASTE", "NOTEBOOK A5", "PEN BLACK", "SANDWICH", "SALAD BOWL", "ICE CREAM", "EGG 10EA")
FOOTERS = ("THANK YOU", "THANK YOU FOR VISITING", "PLEASE COME AGAIN", "NO REFUND WITHOUT RECEIPT",
           "HAVE A NICE DAY")


# The Korean receipts' words, each with the English a receipt might print instead (chosen with EN_PICK).
KO_SHOPS = (("그린마트 강남점", "GREEN MART"), ("카페 루나", "CAFE LUNA"), ("데일리 프레시", "DAILY FRESH"),
            ("달빛 베이커리", "MOONLIGHT BAKERY"), ("서울 식당", "SEOUL KITCHEN"), ("시티 약국", "CITY PHARMACY"),
            ("푸른바다 스시", "BLUE OCEAN SUSHI"), ("행복한 책방", "HAPPY BOOKS"), ("편의점 24시", "CORNER STORE 24"),
            ("박씨네 반찬가게", "PARK'S DELI"))
KO_CITIES = ("서울특별시 강남구", "서울특별시 마포구", "부산광역시 해운대구", "경기도 성남시 분당구",
             "인천광역시 연수구", "대구광역시 중구", "대전광역시 유성구")
KO_ROADS = ("테헤란로", "강남대로", "월드컵로", "해운대로", "판교역로", "중앙로", "대학로", "센텀중앙로")
KO_NAMES = ("김민준", "이서연", "박지훈", "최수아", "정우진", "강하은", "조예린", "윤도현")
KO_ITEMS = (("아메리카노", "AMERICANO"), ("카페 라떼", "CAFE LATTE"), ("바닐라 라떼", "VANILLA LATTE"),
            ("크림치즈 베이글", "BAGEL"), ("우유 1L", "MILK 1L"), ("식빵", "WHITE BREAD"),
            ("오렌지 주스", "ORANGE JUICE"),
            ("녹차", "GREEN TEA"), ("초코 쿠키", "CHOCO COOKIE"), ("바나나", "BANANA"), ("사과 3입", "APPLE 3EA"),
            ("신라면", "RAMEN"), ("참치 김밥", "KIMBAP"), ("생수 500ml", "WATER 500ML"), ("비누", "SOAP"),
            ("치약", "TOOTHPASTE"), ("공책 A5", "NOTEBOOK A5"), ("볼펜 검정", "PEN BLACK"), ("햄 샌드위치", "SANDWICH"),
            ("샐러드", "SALAD BOWL"), ("아이스크림", "ICE CREAM"), ("계란 10구", "EGG 10EA"), ("삼각김밥", "ONIGIRI"),
            ("컵라면", "CUP NOODLE"), ("두부", "TOFU"), ("콩나물", "BEAN SPROUTS"), ("떡볶이", "TTEOKBOKKI"),
            ("어묵", "FISH CAKE"), ("맥주 500ml", "BEER 500ML"), ("감자칩", "POTATO CHIPS"),
            ("딸기 우유", "STRAWBERRY MILK"))
KO_CARDS = ("신한카드", "국민카드", "삼성카드", "현대카드", "우리카드", "하나카드", "비씨카드", "롯데카드")
KO_FOOTERS = (("감사합니다", "THANK YOU"), ("또 방문해 주세요", "PLEASE COME AGAIN"),
              ("좋은 하루 되세요", "HAVE A NICE DAY"), ("교환 환불은 7일 이내 가능합니다", "NO REFUND WITHOUT RECEIPT"))
#: How often a Korean receipt prints a label or name in English instead, chosen so that Latin words make up
#: EN_SHARE of the words with a language (tests/data/test_synth.py measures it).
EN_PICK = 0.08


@dataclass
class Receipt:
    """A rendered receipt: RGB pixels, word texts and quads (TL, TR, BR, BL), and its ink labels.

    ``ink[y, x] = k + 1`` where word ``k``'s visible ink lies (0 elsewhere); tests use it to
    prove the polygons are tight.
    """

    image: np.ndarray
    texts: list[str]
    quads: np.ndarray
    ink: np.ndarray


def korean_font_dir() -> Path:
    """The folder of the wheel's NanumGothic files, found without importing the package (its import restyles
    matplotlib)."""
    spec = importlib.util.find_spec(KOREAN_FONT_PACKAGE.replace("-", "_"))
    folder = Path(next(iter(spec.submodule_search_locations or []), "")) / "fonts" if spec else None
    if folder is None or not (folder / "NanumGothic.ttf").is_file():
        raise InputError(f"the Korean synthetic receipts need the Hangul font inside the {KOREAN_FONT_PACKAGE} "
                         f"wheel: pip install -r requirements.txt (or pip install {KOREAN_FONT_PACKAGE}), or "
                         "generate English receipts (language='en', python -m kit synth --language en)")
    return folder


def _check_language(language: str) -> None:
    if language not in FONTS:
        raise InputError(f"unknown synthetic receipt language {language!r}; known: {', '.join(LANGUAGES)}")


@lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    folder = korean_font_dir() if name.startswith("Nanum") else FONT_DIR
    return ImageFont.truetype(str(folder / name), size)


def word_language(text: str) -> list[str] | None:
    """A word's ``language`` as the competition writes it: ``["ko"]`` with Hangul in it, ``["en"]`` with Latin
    letters only, ``None`` for numbers and symbols."""
    return ["ko"] if HANGUL.search(text) else ["en"] if LATIN.search(text) else None


def _money(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return f"{int(rng.integers(1, 60)) * 500:,}"
    return f"{rng.uniform(0.5, 80):.2f}"


Line = list[tuple[str, float, str, bool, float]]  # (text, x in [0, 1] of the printable width, align, bold, size)


def _layout(rng: np.random.Generator) -> list[Line]:
    """The English receipt's lines."""
    lines: list[Line] = [
        [(str(rng.choice(SHOPS)), 0.5, "center", True, 1.4)],
        [(f"{int(rng.integers(1, 999))} {rng.choice(STREETS)}", 0.5, "center", False, 1.0)],
        [(f"TEL {int(rng.integers(10, 99)):02d}-{int(rng.integers(100, 9999))}-{int(rng.integers(1000, 9999))}",
          0.5, "center", False, 1.0)],
        [(f"DATE 2026-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}", 0.0, "left", False, 1.0),
         (f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}", 1.0, "right", False, 1.0)],
        [(f"NO: {int(rng.integers(0, 10**6)):06d}", 0.0, "left", False, 1.0)],
        [("-", 0, "sep", False, 1.0)],
        [("ITEM", 0.0, "left", True, 1.0), ("QTY", 0.62, "right", True, 1.0), ("AMOUNT", 1.0, "right", True, 1.0)],
    ]
    for _ in range(int(rng.integers(3, 15))):
        lines.append([(str(rng.choice(ITEMS)), 0.0, "left", False, 1.0),
                      (str(int(rng.integers(1, 5))), 0.62, "right", False, 1.0),
                      (_money(rng), 1.0, "right", False, 1.0)])
    lines.append([("=", 0, "sep", False, 1.0)])
    for label in ("SUBTOTAL", "TAX"):
        lines.append([(label, 0.0, "left", False, 1.0), (_money(rng), 1.0, "right", False, 1.0)])
    lines.append([("TOTAL", 0.0, "left", True, 1.2), (_money(rng), 1.0, "right", True, 1.2)])
    lines.append([("-", 0, "sep", False, 1.0)])
    lines.append([(f"CARD ****{int(rng.integers(0, 10**4)):04d}", 0.0, "left", False, 1.0)])
    lines.append([(str(rng.choice(FOOTERS)), 0.5, "center", False, 1.0)])
    return lines


def _pick(rng: np.random.Generator, pairs: tuple[tuple[str, str], ...] | tuple[str, str]) -> str:
    """One (Korean, English) pair drawn from ``pairs`` (or ``pairs`` itself), printed in English with EN_PICK."""
    pair = pairs if isinstance(pairs[0], str) else pairs[int(rng.integers(len(pairs)))]
    return pair[1] if rng.random() < EN_PICK else pair[0]


def _won(rng: np.random.Generator, low: int = 5, high: int = 300) -> str:
    return f"{int(rng.integers(low, high)) * 100:,}"


def _layout_ko(rng: np.random.Generator) -> list[Line]:
    """A Korean receipt's lines: header with business number and address, four item columns, the VAT lines,
    the card slip and a footer (60-130 words; the competition's receipts: 48-276, mean 116)."""
    left, right, centre = 0.0, 1.0, 0.5
    stamp = (f"2026-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d} "
             f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}")
    lines: list[Line] = [
        [(_pick(rng, KO_SHOPS), centre, "center", True, 1.4)],
        [(f"{rng.choice(KO_CITIES)} {rng.choice(KO_ROADS)} {int(rng.integers(1, 999))}", centre, "center", False, 1.0)],
        [(f"{_pick(rng, ('사업자번호', 'BIZ NO'))} {int(rng.integers(100, 999))}-{int(rng.integers(10, 99))}-"
          f"{int(rng.integers(10000, 99999))}", left, "left", False, 1.0),
         (f"{_pick(rng, ('대표', 'CEO'))} {rng.choice(KO_NAMES)}", right, "right", False, 1.0)],
        [(f"{_pick(rng, ('전화', 'TEL'))} 0{int(rng.integers(2, 70))}-{int(rng.integers(100, 9999))}-"
          f"{int(rng.integers(1000, 9999))}", left, "left", False, 1.0)],
        [(f"{_pick(rng, ('판매일', 'DATE'))} {stamp}", left, "left", False, 1.0),
         (f"{_pick(rng, ('포스', 'POS'))} {int(rng.integers(1, 9)):02d}", right, "right", False, 1.0)],
        [(f"{_pick(rng, ('영수증번호', 'NO'))} {int(rng.integers(0, 10**6)):06d}", left, "left", False, 1.0),
         (f"{_pick(rng, ('계산원', 'CASHIER'))} {rng.choice(KO_NAMES)}", right, "right", False, 1.0)],
        [("-", 0, "sep", False, 1.0)],
        [(_pick(rng, ("상품명", "ITEM")), left, "left", True, 1.0),
         (_pick(rng, ("단가", "PRICE")), 0.62, "right", True, 1.0),
         (_pick(rng, ("수량", "QTY")), 0.75, "right", True, 1.0),
         (_pick(rng, ("금액", "AMOUNT")), right, "right", True, 1.0)],
        [("-", 0, "sep", False, 1.0)],
    ]
    for number in range(1, int(rng.integers(4, 14))):  # numbered, as Korean POS receipts print them
        price, qty = int(rng.integers(5, 300)) * 100, int(rng.integers(1, 5))
        lines.append([(f"{number:03d} {_pick(rng, KO_ITEMS)}", left, "left", False, 1.0),
                      (f"{price:,}", 0.62, "right", False, 1.0), (str(qty), 0.75, "right", False, 1.0),
                      (f"{price * qty:,}", right, "right", False, 1.0)])
    lines.append([("=", 0, "sep", False, 1.0)])
    for label in (("과세 물품가액", "SUBTOTAL"), ("부가세", "VAT"), ("면세 물품가액", "TAX FREE")):
        lines.append([(_pick(rng, label), left, "left", False, 1.0), (_won(rng), right, "right", False, 1.0)])
    lines.append([(_pick(rng, ("합계 금액", "TOTAL")), left, "left", True, 1.2),
                  (_won(rng), right, "right", True, 1.2)])
    lines.append([(_pick(rng, ("받을 금액", "AMOUNT DUE")), left, "left", False, 1.0),
                  (_won(rng), right, "right", False, 1.0)])
    lines.append([("-", 0, "sep", False, 1.0)])
    lines += [
        [(f"{_pick(rng, ('카드종류', 'CARD'))} {rng.choice(KO_CARDS)}", left, "left", False, 1.0)],
        [(f"{_pick(rng, ('카드번호', 'CARD NO'))} {int(rng.integers(1000, 9999))}-{int(rng.integers(10, 99))}**-****-"
          f"{int(rng.integers(1000, 9999))}", left, "left", False, 1.0)],
        [(f"{_pick(rng, ('승인번호', 'APPROVAL'))} {int(rng.integers(10**7, 10**8))}", left, "left", False, 1.0),
         (_pick(rng, ("일시불", "LUMP SUM")), right, "right", False, 1.0)],
        [(f"{_pick(rng, ('승인일시', 'APPROVED'))} {stamp}", left, "left", False, 1.0)],
        [("-", 0, "sep", False, 1.0)],
    ]
    for footer in rng.choice(len(KO_FOOTERS), size=int(rng.integers(1, 3)), replace=False):
        lines.append([(_pick(rng, KO_FOOTERS[int(footer)]), centre, "center", False, 1.0)])
    return lines


def _paper(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Off-white paper with a smooth shading gradient and fibre noise, float32 RGB."""
    tint = rng.uniform(232, 252) - np.array([0.0, rng.uniform(0, 6), rng.uniform(2, 14)])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    shade = rng.uniform(-12, 6) * (yy / height) + rng.uniform(-6, 6) * (xx / width)
    paper = tint[None, None, :] + shade[..., None] + rng.normal(0, 2.0, (height, width, 1))
    return paper.astype(np.float32)


def render_receipt(rng: np.random.Generator, language: str = "ko") -> Receipt:
    """Lay out, render and warp one receipt in ``language`` (one of :data:`LANGUAGES`)."""
    _check_language(language)
    fonts = FONTS[language]
    body = str(rng.choice(tuple(fonts)))
    width = int(rng.integers(*PAPER_WIDTH[language]))
    margin = int(rng.integers(14, 32))
    size = int((width - 2 * margin) / (rng.integers(30, 40) * 0.65))  # 30-40 characters a line
    lines = _layout_ko(rng) if language == "ko" else _layout(rng)
    line_h = int(size * rng.uniform(1.35, 1.7))
    height = 2 * margin + sum(int(line_h * max(item[4] for item in line)) for line in lines)
    paper = _paper(rng, height, width)
    ink_labels = np.zeros((height, width), np.int32)
    ink_rgb = np.array([rng.uniform(10, 70)] * 3, np.float32) + np.array([0, 0, rng.uniform(0, 30)], np.float32)
    printable = width - 2 * margin
    texts: list[str] = []
    rects: list[tuple[int, int, int, int]] = []

    y = margin
    for line in lines:
        line_height = int(line_h * max(item[4] for item in line))
        line_end = -np.inf  # where the line's last word ends: a column pushed into it moves right, never overlaps
        for text, xpos, align, bold, factor in line:
            if align == "sep":
                _draw_separator(paper, rng, y + line_height // 2, margin, width - margin, text, ink_rgb)
                continue
            font = _font(fonts[body] if bold else body, int(size * factor))
            space = font.getlength(" ")
            words = text.split()
            total = sum(font.getlength(w) for w in words) + space * (len(words) - 1)
            x = margin + xpos * printable - {"left": 0.0, "center": total / 2, "right": total}[align]
            x = max(x, line_end + space)
            for word in words:
                line_end = x + font.getlength(word)
                rect = _draw_word(paper, ink_labels, font, word, int(round(x)), y, len(texts) + 1, ink_rgb, rng)
                if rect is not None:
                    texts.append(word)
                    rects.append(rect)
                x += font.getlength(word) + space
        y += line_height

    quads = np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]] for x0, y0, x1, y1 in rects], np.float64)
    return _warp(rng, paper, ink_labels, texts, quads.reshape(-1, 4, 2))


def _draw_separator(paper: np.ndarray, rng: np.random.Generator, y: int, x0: int, x1: int, kind: str,
                    ink: np.ndarray) -> None:
    """A dashed or double rule: printed graphics, not words (a hard negative for the model)."""
    dash, gap = int(rng.integers(4, 10)), int(rng.integers(3, 6))
    rows = (y - 2, y + 1) if kind == "=" else (y,)
    for row in rows:
        for x in range(x0, x1, dash + gap):
            paper[row:row + 2, x:min(x + dash, x1)] = ink


def _draw_word(paper: np.ndarray, labels: np.ndarray, font: ImageFont.FreeTypeFont, word: str, x: int, y: int,
               label: int, ink: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int, int] | None:
    """Render one word at (x, y); blend its glyphs into the paper and return its tight ink box."""
    left, top, right, bottom = font.getbbox(word)
    patch = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(patch).text((1 - left, 1 - top), word, font=font, fill=255)
    alpha = np.asarray(patch, np.float32) / 255.0
    ox, oy = x + left - 1, y + top - 1
    h, w = alpha.shape
    if ox < 0 or oy < 0 or ox + w > paper.shape[1] or oy + h > paper.shape[0]:
        return None
    strength = rng.uniform(0.75, 1.0)
    region = paper[oy:oy + h, ox:ox + w]
    a = (alpha * strength)[..., None]
    region[:] = region * (1 - a) + ink * a
    visible = np.asarray(patch) >= INK_ALPHA
    if not visible.any():
        return None
    labels[oy:oy + h, ox:ox + w][visible] = label
    rows, cols = np.nonzero(visible)
    return ox + int(cols.min()), oy + int(rows.min()), ox + int(cols.max()) + 1, oy + int(rows.max()) + 1


def _warp(rng: np.random.Generator, paper: np.ndarray, labels: np.ndarray, texts: list[str],
          quads: np.ndarray) -> Receipt:
    """Rotate and perspective-warp the paper onto a background; finish with blur, noise and scaling."""
    height, width = labels.shape
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    theta = np.deg2rad(rng.uniform(-4, 4))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]], np.float32)
    dst = (src - src.mean(0)) @ rot.T + rng.uniform(-0.02, 0.02, (4, 2)).astype(np.float32) * [width, height]
    border = rng.uniform(0.03, 0.12) * max(width, height)
    dst -= dst.min(0) - border
    out_w, out_h = dst.max(0) + border
    scale = min(rng.uniform(0.75, 1.25), MAX_SIDE / max(out_w, out_h))
    dst *= scale
    size = (int(np.ceil(out_w * scale)), int(np.ceil(out_h * scale)))
    homography = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    background = tuple(float(c) for c in rng.uniform(60, 160) + rng.uniform(-20, 20, 3))
    image = cv2.warpPerspective(paper, homography, size, flags=cv2.INTER_LINEAR, borderValue=background)
    ink = cv2.warpPerspective(labels.astype(np.float32), homography, size, flags=cv2.INTER_NEAREST).astype(np.int32)
    sigma = rng.uniform(0.0, 1.1)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = image + rng.normal(0, rng.uniform(1.5, 5.0), image.shape).astype(np.float32)
    warped = cv2.perspectiveTransform(quads.reshape(-1, 1, 2).astype(np.float64), homography.astype(np.float64))
    return Receipt(np.clip(image, 0, 255).astype(np.uint8), texts, warped.reshape(-1, 4, 2), ink)


def _render_file(args: tuple[int, int, int, Path, str]) -> tuple[int, int, list[str], list[list[list[float]]]]:
    """Render receipt ``index`` of split number ``split_no`` and save it as JPEG; runs in a worker."""
    seed, split_no, index, path, language = args
    rng = np.random.default_rng([seed, split_no, index])
    receipt = render_receipt(rng, language)
    quality = int(rng.integers(80, 96))
    cv2.imwrite(str(path), cv2.cvtColor(receipt.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    h, w = receipt.image.shape[:2]
    return w, h, receipt.texts, np.round(receipt.quads, 2).tolist()


def generate_dataset(out_dir: Path | str = "data/synth", counts: dict[str, int] | None = None, seed: int = 0,
                     workers: int | None = None, overwrite: bool = False, language: str = "ko") -> Path:
    """Write a synthetic dataset in the competition layout (test JSON without words) and a manifest of what
    made it (seed, counts, language), which :func:`ensure_dataset` checks before reusing the folder.

    A folder that already holds files is never written into; with ``overwrite`` a synthetic set the kit made
    (it has the manifest) is replaced, anything else still refused.
    """
    counts = dict(SYNTH_COUNTS if counts is None else counts)
    _check_language(language)
    if language == "ko":
        korean_font_dir()  # before the folder is touched
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out_dir} already holds files; the kit does not write into it: choose an empty "
                                  f"folder, or replace a synthetic set with python -m kit synth --out {out_dir} "
                                  "--overwrite")
        if not (out_dir / MANIFEST).is_file():
            raise FileExistsError(f"{out_dir} is not a synthetic set made by the kit (no {MANIFEST}); not replacing it")
        shutil.rmtree(out_dir)
    workers = workers or min(4, os.cpu_count() or 1)
    with ProcessPoolExecutor(workers, mp_context=pool_context([__name__])) as pool:  # one pool for every split
        for split, n in counts.items():
            json_path, image_dir = split_paths(out_dir, split)
            image_dir.mkdir(parents=True, exist_ok=True)
            jobs = [(seed, SPLITS.index(split), i, image_dir / f"synth_{split}_{i:04d}.jpg", language)
                    for i in range(n)]
            results = list(tqdm(pool.map(_render_file, jobs, chunksize=4), total=n, desc=f"synth {split}"))
            records = []
            for (_, _, _, path, _), (w, h, texts, quads) in zip(jobs, results):
                words = [] if split == "test" else [
                    Word(f"{k + 1:04d}", np.asarray(q), extra={"transcription": t, "orientation": "Horizontal",
                                                                "language": word_language(t)})
                    for k, (t, q) in enumerate(zip(texts, quads))
                ]
                records.append(ImageRecord(path.name, path, w, h, words))
            write_annotations(records, json_path)
    manifest = {"seed": seed, "counts": counts, "language": language}
    write_text(out_dir / MANIFEST, json.dumps(manifest))  # last: marks the set complete
    return out_dir


def ensure_dataset(out_dir: Path | str = "data/synth", counts: dict[str, int] | None = None, seed: int = 0,
                   language: str = "ko") -> Path:
    """The synthetic dataset at ``out_dir``, generated when the folder is missing or empty.

    A folder holding anything else (a set made with other settings, a user's files) is never regenerated: it is
    an error that says how to rebuild it.
    """
    out_dir = Path(out_dir)
    wanted = {"seed": seed, "counts": dict(SYNTH_COUNTS if counts is None else counts), "language": language}
    manifest = out_dir / MANIFEST
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return generate_dataset(out_dir, wanted["counts"], seed, language=language)
    found = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else None
    if found == wanted:
        return out_dir
    if found is None:  # a user's files, or a generation killed before its manifest: not the kit's to delete
        raise InputError(f"{out_dir} holds files but no {MANIFEST}, not the synthetic set asked for ({wanted}); the "
                         "kit does not overwrite it: move or delete it, then run again")
    sizes = " ".join(f"--{k} {v}" for k, v in wanted["counts"].items())
    made = found if "language" in found else {**found, "language": "en, by an older kit"}
    raise InputError(f"{out_dir} holds a synthetic set made with {made}, not the one asked for ({wanted}); the kit "
                     f"does not overwrite it. Rebuild it with python -m kit synth --out {out_dir} {sizes} --seed "
                     f"{seed} --language {language} --overwrite, or move it away")


def resolve_data_dir(data_dir: Path | str, announce: bool = True) -> Path:
    """The dataset folder to use.

    The synthetic default is generated on first use. The default competition folder
    (``data/receipts``) falls back to the synthetic data, saying so, when it is absent;
    any other folder must hold a dataset.
    """
    path = project_path(data_dir)
    if path == COMPETITION_DIR and not available_splits(path):
        if announce:
            print(f"No competition data in {path}: using the synthetic receipts in {SYNTH_DIR} instead.")
        path = SYNTH_DIR
    if path == SYNTH_DIR:
        return ensure_dataset(path)
    if not available_splits(path):
        raise FileNotFoundError(
            f"{path}: no dataset here (expected jsons/train.json, val.json or test.json and images/<split>/)"
        )
    return path


def command(args: argparse.Namespace) -> None:
    """``python -m kit synth``: write the dataset and say where."""
    out = generate_dataset(args.out, {split: getattr(args, split) for split in SYNTH_COUNTS}, args.seed,
                           overwrite=args.overwrite, language=args.language)
    print(f"synthetic dataset written to {out}")

