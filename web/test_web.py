#!/usr/bin/python3
"""test_web.py - the page in headless Chromium (make test-web).

    /usr/bin/python3 web/test_web.py web/build build

Serves WEBDIR on 127.0.0.1 (python3 -m http.server on a free port) and drives
Debian's chromium through chromedriver (python3-selenium):
  1. index.html?selftest=1               the SELFTEST line: ok, simd=1, accuracy above the threshold
  2. index.html?selftest=1&build=scalar  the scalar build's self-test: ok, simd=0
  3. index.html                          training starts, pauses and resumes; drawing with the mouse and
                                         with touch gives guesses (bars summing to 100%) that change as
                                         one draws, and a saliency map; a test picture is guessed
     the MLP can replace the CNN
  4. the autoencoder trains, a point of the code plane decodes to a picture
  5. the benchmark (?quick=1) fills its table with both builds and their ratios
  6. no errors in the browser's console
Screenshots: OUTDIR/web_selftest.png, web_page.png, web_mobile.png.  Timings are printed, never
checked (the machine is shared).  Last line: "N passed, N failed"."""
import http.client
import os
import re
import socket
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

WEB = sys.argv[1] if len(sys.argv) > 1 else "web/build"
OUT = sys.argv[2] if len(sys.argv) > 2 else "build"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
MIN_ACC = 0.65
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   %s%s" % (name, "  " + detail if detail else ""))
    else:
        failed += 1
        print("FAIL %s%s" % (name, "  " + detail if detail else ""))
    sys.stdout.flush()
    return ok


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def serve(root):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "-d", root],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("HEAD", "/index.html")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("test_web: the server on port %d did not answer" % port)


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--window-size=1400,1000",
              "--hide-scrollbars"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)


def wait(d, js, timeout, every=0.25):
    """Polls a JavaScript expression until it is truthy; returns its value or None."""
    end = time.time() + timeout
    while time.time() < end:
        v = d.execute_script("return " + js)
        if v:
            return v
        time.sleep(every)
    return None


def full_screenshot(d, path, width=1400):
    h, chrome = d.execute_script("return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]")
    d.set_window_size(width, h + chrome)
    d.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.4)
    d.save_screenshot(path)
    print("     screenshot %s" % path)


def console_errors(d):
    try:
        return [e["message"] for e in d.get_log("browser") if e.get("level") == "SEVERE"]
    except Exception:  # a driver without the log endpoint
        return []


def selftest(d, base, query, want_simd):
    d.get(base + "index.html?" + query)
    line = wait(d, "(t => t.startsWith('SELFTEST ok') || t.startsWith('SELFTEST fail') ? t : '')"
                   "(document.getElementById('selftest').textContent)", 600, 0.5)
    print("     %s" % line)
    ok = bool(line) and line.startswith("SELFTEST ok ")
    fields = dict(kv.split("=", 1) for kv in (line or "").split()[2:] if "=" in kv)
    check("selftest %s: SELFTEST ok" % query, ok, "" if ok else repr(line))
    if ok:
        check("selftest %s: simd=%d" % (query, want_simd), fields.get("simd") == str(want_simd), "simd=" + fields.get("simd", "?"))
        acc = float(fields.get("accuracy", "0"))
        check("selftest %s: accuracy %.4f > %.2f" % (query, acc, MIN_ACC), acc > MIN_ACC)
        for k in ("steps_per_s", "predict_ms"):
            check("selftest %s: %s is a positive number" % (query, k), float(fields.get(k, "0")) > 0, fields.get(k, ""))
    return fields


def stroke(d, el, points):
    """A mouse stroke through points given in 0..1 of the element's size."""
    w, h = el.size["width"], el.size["height"]
    a = ActionChains(d, duration=10)
    x, y = points[0]
    a.move_to_element_with_offset(el, int((x - 0.5) * w), int((y - 0.5) * h)).click_and_hold()
    px, py = x, y
    for x, y in points[1:]:
        a.move_by_offset(int((x - px) * w), int((y - py) * h))
        px, py = x, y
    a.release().perform()


def bars(d):
    return d.execute_script("return Array.from(document.querySelectorAll('#bars .fill'))"
                            ".map(e => parseFloat(e.style.width) || 0)")


def canvas_stats(d, cid):
    """(mean brightness, mean red minus green) of a canvas"""
    return d.execute_script("""
        const c = document.getElementById(arguments[0]), g = c.getContext('2d');
        const p = g.getImageData(0, 0, c.width, c.height).data;
        let s = 0, r = 0;
        for (let i = 0; i < p.length; i += 4) { s += (p[i] + p[i+1] + p[i+2]) / 3; r += p[i] - p[i+1]; }
        return [s / (p.length / 4), r / (p.length / 4)];""", cid)


def interactive(d, base):
    d.get(base + "index.html?quick=1")
    d.set_window_size(1400, 1000)
    # training starts by itself; weights reach the page
    s = wait(d, "parseInt(document.getElementById('st-samples').textContent.replace(/,/g, '')) || 0", 120)
    check("training starts on its own and counts pictures", bool(s), "%s pictures" % s)
    check("the chart draws", bool(wait(d, "train.hist.length > 1", 60)))
    check("weights reach the page", bool(wait(d, "page.clf !== null", 60)))
    # pause and resume
    btn = d.find_element(By.ID, "train-toggle")
    btn.click()
    time.sleep(1.0)
    n0 = d.execute_script("return train.hist.length")
    time.sleep(1.5)
    n1 = d.execute_script("return train.hist.length")
    check("pause stops training", n0 == n1 and btn.text.startswith("Resume"), "%d -> %d, button '%s'" % (n0, n1, btn.text))
    btn.click()
    check("resume continues training", bool(wait(d, "train.hist.length > %d" % n1, 30)), btn.text)
    # draw a pair of trousers with the mouse: two legs
    pad = d.find_element(By.ID, "pad")
    stroke(d, pad, [(0.40, 0.12), (0.38, 0.5), (0.36, 0.9)])
    check("mouse drawing puts ink on the pad", d.execute_script("return ink.reduce((a, b) => a + b, 0)") > 5)
    wait(d, "document.getElementById('guess').dataset.cls !== undefined", 10)
    b1 = bars(d)
    check("the guess is one of the ten classes", d.find_element(By.ID, "guess").text.rstrip("?") in
          d.execute_script("return CLASSES"), d.find_element(By.ID, "guess").text)
    check("the bars sum to 100%", abs(sum(b1) - 100) < 1.0, "%.2f" % sum(b1))
    stroke(d, pad, [(0.60, 0.12), (0.62, 0.5), (0.64, 0.9)])
    stroke(d, pad, [(0.38, 0.12), (0.62, 0.12)])
    time.sleep(0.3)
    b2 = bars(d)
    check("the bars change as one draws", max(abs(x - y) for x, y in zip(b1, b2)) > 0.05,
          "%s -> %s" % ([round(x) for x in b1], [round(x) for x in b2]))
    ms = d.execute_script("return document.getElementById('predict-time').dataset.ms")
    print("     predict on the page (training running meanwhile): %s ms;  %s" %
          (ms, d.find_element(By.ID, "predict-time").text))
    bright, red = canvas_stats(d, "saliency")
    check("the saliency map shows red where it matters", red > 1.0, "mean red-green %.1f" % red)
    # touch: a stroke through Chrome's touch events (pointerType 'touch')
    d.find_element(By.ID, "pad-clear").click()
    r = d.execute_script("const r = document.getElementById('pad').getBoundingClientRect();"
                         "return [r.left, r.top, r.width, r.height]")
    pts = [(r[0] + r[2] * (0.3 + 0.04 * i), r[1] + r[3] * (0.2 + 0.06 * i)) for i in range(10)]
    d.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": pts[0][0], "y": pts[0][1]}]})
    for x, y in pts[1:]:
        d.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    d.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    time.sleep(0.3)
    check("touch drawing puts ink on the pad", d.execute_script("return ink.reduce((a, b) => a + b, 0)") > 3)
    # a test picture from the button
    d.find_element(By.ID, "pad-sample").click()
    time.sleep(0.3)
    check("a test picture is loaded and guessed", abs(sum(bars(d)) - 100) < 1.0 and
          "labelled" in d.find_element(By.ID, "predict-time").text, d.find_element(By.ID, "predict-time").text)
    # the MLP instead of the CNN: training restarts with it, its weights reach the page, it guesses
    Select(d.find_element(By.ID, "model-kind")).select_by_value("mlp")
    check("switching to the MLP retrains and guesses with it",
          bool(wait(d, "page.clfKind === 'mlp' && train.kind === 'mlp' && train.hist.length > 2", 60)) and
          abs(sum(bars(d)) - 100) < 1.0, "%d chart points" % d.execute_script("return train.hist.length"))
    Select(d.find_element(By.ID, "model-kind")).select_by_value("cnn")
    # the autoencoder
    d.find_element(By.ID, "ae-toggle").click()
    check("the autoencoder trains and its codes reach the page", bool(wait(d, "ae.codes !== null && ae.steps > 200", 180)),
          d.find_element(By.ID, "ae-status").text)
    plane = d.find_element(By.ID, "plane")
    ActionChains(d).move_to_element_with_offset(plane, 10, -20).click().perform()
    time.sleep(0.3)
    bright, _ = canvas_stats(d, "decoded")
    check("a point of the code plane decodes to a picture", bright > 5 and "Code (" in d.find_element(By.ID, "ae-point").text,
          "brightness %.1f, %s" % (bright, d.find_element(By.ID, "ae-point").text))
    d.find_element(By.ID, "ae-toggle").click()  # pause it: the benchmark and screenshots follow
    # the benchmark, short (?quick=1)
    d.find_element(By.ID, "bench-run").click()
    done = wait(d, "document.getElementById('bench').dataset.done === '1'", 600, 0.5)
    rows = d.execute_script("return Array.from(document.querySelectorAll('#bench-body tr'))"
                            ".map(tr => Array.from(tr.children).map(td => td.textContent))")
    for row in rows:
        print("     | %s |" % " | ".join(row))
    check("the benchmark fills its table with both builds", bool(done) and all(re.match(r"^[0-9.]+×$", r[3]) for r in rows),
          d.find_element(By.ID, "bench-status").text)
    print("     " + d.find_element(By.ID, "bench-note").text)
    # a drawing on the pad for the screenshot, the training left running
    d.find_element(By.ID, "pad-sample").click()
    time.sleep(0.5)
    ActionChains(d).move_to_element_with_offset(plane, 40, 30).perform()
    time.sleep(0.3)
    full_screenshot(d, os.path.join(OUT, "web_page.png"))
    errs = console_errors(d)
    check("no errors in the console", not errs, "; ".join(errs)[:500])
    # a phone-sized window: one column, nothing wider than the screen
    d.set_window_size(420, 900)
    time.sleep(0.4)
    over = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    check("a phone-sized window needs no sideways scrolling", over <= 0, "%d px too wide" % over)
    full_screenshot(d, os.path.join(OUT, "web_mobile.png"), 420)


def main():
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(os.path.join(WEB, "index.html")):
        sys.exit("test_web: %s/index.html missing (make web)" % WEB)
    server, port = serve(WEB)
    base = "http://127.0.0.1:%d/" % port
    d = None
    try:
        d = browser()
        print("chromium %s, page %s" % (d.capabilities.get("browserVersion", "?"), base))
        f = selftest(d, base, "selftest=1", 1)
        full_screenshot(d, os.path.join(OUT, "web_selftest.png"))
        errs = console_errors(d)
        check("selftest: no errors in the console", not errs, "; ".join(errs)[:500])
        d.set_window_size(1400, 1000)
        g = selftest(d, base, "selftest=1&build=scalar", 0)
        if f.get("step_ms") and g.get("step_ms"):
            print("     CNN step, batch 32: %s ms (simd build), %s ms (scalar build); predict %s / %s ms" %
                  (f["step_ms"], g["step_ms"], f.get("predict_ms"), g.get("predict_ms")))
        interactive(d, base)
    except Exception as e:  # a crash of the driver or the page counts as a failure, not a traceback
        check("the browser session runs to the end", False, "%s: %s" % (type(e).__name__, str(e)[:400]))
    finally:
        if d:
            d.quit()
        server.terminate()
        server.wait()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
