#!/usr/bin/env python3
"""Plain English prose from the Debian Administrator's Handbook (Debian package debian-handbook,
/usr/share/doc/debian-handbook/html/en-US), for perplexity and AWQ calibration text.

Only the text of paragraphs (<div class="para">) is kept (no code listings, tables, titles or navigation), one
paragraph per line, sections in file-name order (sect.*.html sorted; a stable order). Writes:
  OUT/eval.txt   the first part, at least --eval-chars characters (whole paragraphs)
  OUT/calib.txt  the rest: disjoint from eval.txt
Usage: tools/prose_text.py OUT [--eval-chars 400000]   (apt-get install debian-handbook first)
"""
import argparse
import html
import html.parser
import os
import re
import sys

ROOT = "/usr/share/doc/debian-handbook/html/en-US"


class Paragraphs(html.parser.HTMLParser):
    """The text of each <div class="para"> (the book's paragraphs), without nested blocks."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.divs = 0       # open <div>s inside the current paragraph (0: not in one)
        self.skip = 0       # inside <pre>, <table>, lists or figures within a paragraph
        self.buf = []
        self.out = []

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class", "") or ""
        if tag == "div":
            if self.divs:
                self.divs += 1
                self.skip += 1
            elif "para" in cls.split():
                self.divs = 1
                self.buf = []
        elif self.divs and tag in ("pre", "table", "ul", "ol", "dl", "script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if not self.divs:
            return
        if tag == "div":
            self.divs -= 1
            if self.divs:
                self.skip -= 1
                return
            text = re.sub(r"\s+", " ", "".join(self.buf)).strip()
            if len(text) >= 80:
                self.out.append(text)
        elif tag in ("pre", "table", "ul", "ol", "dl", "script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if self.divs and not self.skip:
            self.buf.append(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--eval-chars", type=int, default=400000)
    a = ap.parse_args()
    if not os.path.isdir(ROOT):
        sys.exit(f"{ROOT} is missing: apt-get install debian-handbook")
    paras = []
    for name in sorted(os.listdir(ROOT)):
        if name.startswith("sect.") and name.endswith(".html"):
            p = Paragraphs()
            with open(os.path.join(ROOT, name), encoding="utf-8") as f:
                p.feed(f.read())
            paras.extend(p.out)
    os.makedirs(a.out, exist_ok=True)
    n, cut = 0, len(paras)
    for i, t in enumerate(paras):
        n += len(t) + 1
        if n >= a.eval_chars:
            cut = i + 1
            break
    with open(os.path.join(a.out, "eval.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(paras[:cut]) + "\n")
    with open(os.path.join(a.out, "calib.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(paras[cut:]) + "\n")
    print(f"{len(paras)} paragraphs: eval.txt {cut} ({n} chars), calib.txt {len(paras) - cut}")


if __name__ == "__main__":
    main()
