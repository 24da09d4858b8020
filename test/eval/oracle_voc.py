"""Independent reference for ablate's PASCAL VOC evaluation: the rules of the devkit's Python port
(voc_eval.py from py-faster-rcnn / Detectron2) written with numpy and xml.etree, reading the same devkit
tree and detection files.

  .venv/bin/python test/eval/oracle_voc.py MANIFEST.json

MANIFEST is a list of {"root", "imageSet", "detDir", "classes", "thr"}: root holds Annotations/ and
ImageSets/Main/<imageSet>.txt; detDir holds comp4_det_<imageSet>_<class>.txt. Prints per case, per class,
{"ap07", "ap12", "npos", "rec", "prec"} (rec/prec as base64 little-endian float64).

The one documented difference from voc_eval: equal scores are ordered stably (input order), where
voc_eval's np.argsort(-conf) uses an unstable quicksort.
"""

import base64
import json
import os
import sys
import xml.etree.ElementTree as ET

import numpy as np


def parse_rec(filename):
    tree = ET.parse(filename)
    objects = []
    for obj in tree.findall("object"):
        d = obj.find("difficult")
        bb = obj.find("bndbox")
        objects.append(
            {
                "name": obj.find("name").text.strip(),
                "difficult": int(d.text) if d is not None and d.text and d.text.strip() else 0,
                "bbox": [float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")],
            }
        )
    return objects


def voc_ap(rec, prec, use_07_metric):
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def voc_eval(recs, imagenames, detfile, classname, ovthresh):
    class_recs = {}
    npos = 0
    for name in imagenames:
        R = [o for o in recs[name] if o["name"] == classname]
        bbox = np.array([x["bbox"] for x in R]).reshape(-1, 4)
        difficult = np.array([x["difficult"] for x in R]).astype(bool)
        npos = npos + int(np.sum(~difficult))
        class_recs[name] = {"bbox": bbox, "difficult": difficult, "det": [False] * len(R)}
    lines = []
    if os.path.exists(detfile):
        with open(detfile) as f:
            lines = [x.strip().split() for x in f.readlines() if x.strip()]
    image_ids = [x[0] for x in lines]
    confidence = np.array([float(x[1]) for x in lines])
    BB = np.array([[float(z) for z in x[2:]] for x in lines]).reshape(-1, 4)
    nd = len(image_ids)
    tp = np.zeros(nd)
    fp = np.zeros(nd)
    if nd > 0:
        order = np.argsort(-confidence, kind="stable")
        BB = BB[order, :]
        image_ids = [image_ids[x] for x in order]
        for d in range(nd):
            R = class_recs[image_ids[d]]
            bb = BB[d, :].astype(float)
            ovmax = -np.inf
            BBGT = R["bbox"].astype(float)
            if BBGT.size > 0:
                ixmin = np.maximum(BBGT[:, 0], bb[0])
                iymin = np.maximum(BBGT[:, 1], bb[1])
                ixmax = np.minimum(BBGT[:, 2], bb[2])
                iymax = np.minimum(BBGT[:, 3], bb[3])
                iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
                ih = np.maximum(iymax - iymin + 1.0, 0.0)
                inters = iw * ih
                uni = (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0) + (BBGT[:, 2] - BBGT[:, 0] + 1.0) * (
                    BBGT[:, 3] - BBGT[:, 1] + 1.0
                ) - inters
                overlaps = inters / uni
                ovmax = np.max(overlaps)
                jmax = np.argmax(overlaps)
            if ovmax > ovthresh:
                if not R["difficult"][jmax]:
                    if not R["det"][jmax]:
                        tp[d] = 1.0
                        R["det"][jmax] = 1
                    else:
                        fp[d] = 1.0
            else:
                fp[d] = 1.0
    fp = np.cumsum(fp)
    tp = np.cumsum(tp)
    if npos == 0:
        return {"ap07": None, "ap12": None, "npos": 0, "rec": "", "prec": b64(tp / np.maximum(tp + fp, np.finfo(np.float64).eps))}
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return {
        "ap07": voc_ap(rec, prec, True),
        "ap12": voc_ap(rec, prec, False),
        "npos": npos,
        "rec": b64(rec),
        "prec": b64(prec),
    }


def b64(arr):
    return base64.b64encode(np.ascontiguousarray(arr, dtype="<f8").tobytes()).decode("ascii")


def run_case(case):
    with open(os.path.join(case["root"], "ImageSets", "Main", case["imageSet"] + ".txt")) as f:
        imagenames = [x.strip() for x in f.readlines() if x.strip()]
    recs = {n: parse_rec(os.path.join(case["root"], "Annotations", n + ".xml")) for n in imagenames}
    out = {}
    aps07, aps12 = [], []
    for cls in case["classes"]:
        detfile = os.path.join(case["detDir"], "comp4_det_%s_%s.txt" % (case["imageSet"], cls))
        r = voc_eval(recs, imagenames, detfile, cls, case["thr"])
        out[cls] = r
        if r["ap07"] is not None:
            aps07.append(r["ap07"])
            aps12.append(r["ap12"])
    return {
        "perClass": out,
        "mAP07": float(np.mean(aps07)) if aps07 else None,
        "mAP12": float(np.mean(aps12)) if aps12 else None,
    }


def main(argv):
    if len(argv) != 1:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[0]) as f:
        cases = json.load(f)
    print(json.dumps([run_case(c) for c in cases]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
