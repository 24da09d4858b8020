"""Reference oracle for ablate's COCO evaluation: runs PyPI pycocotools on the same files.

Usage (from the repository root, with the project's virtual environment):

  .venv/bin/python test/eval/oracle_coco.py GT.json DETS.json bbox|segm
      One case: prints {"stats", "precision", "recall", "summary"} as JSON.
  .venv/bin/python test/eval/oracle_coco.py --batch MANIFEST.json
      MANIFEST is a list of {"gt", "dt", "iouType"}; prints a JSON list of results, one per case
      (Python starts once for many cases).
  .venv/bin/python test/eval/oracle_coco.py --mask MANIFEST.json
      Mask API checks: MANIFEST is a list of {"h", "w", "segs": [segmentation...], "crowd": [0|1...]};
      prints, per case, each segmentation's RLE string, area and toBbox, and the IoU matrix of all
      segmentations against all (pycocotools' mask.iou, crowd flags applied to the columns).
  .venv/bin/python test/eval/oracle_coco.py --bench GT.json DETS.json bbox REPS
      Timing for bench/eval.ts: per repetition, the seconds spent loading (COCO + loadRes) and in
      evaluate + accumulate + summarize; prints the stats too so the benchmark can check agreement.

Arrays are returned as base64 of little-endian float64 (compact and exact). An empty results list is
accepted (pycocotools' loadRes cannot index it, so an empty results COCO object is built directly).
"""

import base64
import contextlib
import io
import json
import sys
import time

try:
    import numpy as np
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
except ImportError as err:  # pragma: no cover - reported to the test as a clear message
    sys.stderr.write(
        f"oracle_coco.py: cannot import pycocotools/numpy ({err}); run `npm run setup` to install them into .venv\n"
    )
    sys.exit(3)


def b64(arr):
    return base64.b64encode(np.ascontiguousarray(arr, dtype="<f8").tobytes()).decode("ascii")


def load(gt_path, dt_path):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        with open(dt_path) as f:
            dets = json.load(f)
        if len(dets) == 0:
            dt = COCO()
            dt.dataset = {"images": list(gt.dataset["images"]), "categories": gt.dataset["categories"], "annotations": []}
            dt.createIndex()
        else:
            dt = gt.loadRes(dets)
    return gt, dt


def evaluate(gt, dt, iou_type):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            ev.summarize()
    return ev, summary.getvalue()


def run_case(gt_path, dt_path, iou_type):
    gt, dt = load(gt_path, dt_path)
    ev, summary = evaluate(gt, dt, iou_type)
    return {
        "stats": [float(s) for s in ev.stats],
        "precision": b64(ev.eval["precision"]),
        "recall": b64(ev.eval["recall"]),
        "shape": list(ev.eval["precision"].shape),
        "summary": summary,
    }


def run_mask(case):
    h, w = case["h"], case["w"]
    rles = []
    out = {"rles": [], "areas": [], "bboxes": []}
    for seg in case["segs"]:
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg["counts"], list):
            rle = mask_utils.frPyObjects(seg, seg["size"][0], seg["size"][1])
        else:
            rle = seg
        counts = rle["counts"]
        out["rles"].append(counts.decode("ascii") if isinstance(counts, bytes) else counts)
        out["areas"].append(int(mask_utils.area(rle)))
        out["bboxes"].append([float(v) for v in mask_utils.toBbox(rle)])
        rles.append(rle)
    ious = mask_utils.iou(rles, rles, case["crowd"])
    out["iou"] = b64(np.asarray(ious, dtype=np.float64).reshape(len(rles), len(rles)))
    if "boxes" in case:
        boxes = [list(map(float, b)) for b in case["boxes"]]
        bi = mask_utils.iou(boxes, boxes, case["crowd"])
        out["bboxIou"] = b64(np.asarray(bi, dtype=np.float64).reshape(len(boxes), len(boxes)))
    return out


def bench(gt_path, dt_path, iou_type, reps):
    runs = []
    stats = None
    for _ in range(reps):
        t0 = time.perf_counter()
        gt, dt = load(gt_path, dt_path)
        t1 = time.perf_counter()
        ev, _ = evaluate(gt, dt, iou_type)
        t2 = time.perf_counter()
        runs.append({"loadMs": (t1 - t0) * 1000, "evalMs": (t2 - t1) * 1000})
        stats = [float(s) for s in ev.stats]
        del gt, dt, ev
    import resource

    # ru_maxrss is in KiB on Linux
    return {"runs": runs, "stats": stats, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv):
    if len(argv) == 2 and argv[0] == "--batch":
        with open(argv[1]) as f:
            cases = json.load(f)
        print(json.dumps([run_case(c["gt"], c["dt"], c["iouType"]) for c in cases]))
    elif len(argv) == 2 and argv[0] == "--mask":
        with open(argv[1]) as f:
            cases = json.load(f)
        print(json.dumps([run_mask(c) for c in cases]))
    elif len(argv) == 5 and argv[0] == "--bench":
        print(json.dumps(bench(argv[1], argv[2], argv[3], int(argv[4]))))
    elif len(argv) == 3:
        print(json.dumps(run_case(argv[0], argv[1], argv[2])))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
