"""The dashboard driven through headless Chromium (Debian's chromium,
chromium-driver and python3-selenium), for tests/e2e/test_dashboard.sh.

Run by Debian's /usr/bin/python3 inside the test's network namespace, so
the browser reaches hcd's loopback listener and nothing else.  As a
person would: log in (password, then the TOTP code), create a network and
a VM through the forms, watch the VM reach "running" in the table (live
state), open its console and read the guest's prompt, type a command and
read its answer, delete the VM and see its row go.  Then the browser's
own logs are checked: no request URL (HTTP or WebSocket) ever held the
token, and the page's policy refused no script, connection or frame.

Environment: DASH_URL, DASH_USER, DASH_PASSWORD, DASH_OTP_SECRET,
DASH_OUT (screenshots and logs).  The VM table must be fed by
/v1/events alone: one list when the stream opens, no polling.
Exits non-zero with "FAIL: why" on stderr.
"""
import json
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

URL = os.environ["DASH_URL"]
OUT = os.environ["DASH_OUT"]
USER = os.environ["DASH_USER"]


def fail(why):
    print(f"FAIL: {why}", file=sys.stderr)
    try:
        shot("failure")
        with open(os.path.join(OUT, "failure.html"), "w") as f:
            f.write(driver.page_source)
        with open(os.path.join(OUT, "failure-network.txt"), "w") as f:
            for entry in driver.get_log("performance"):
                msg = json.loads(entry["message"])["message"]
                if msg["method"].startswith("Network.") and "DataReceived" not in msg["method"]:
                    f.write(f"{entry['timestamp']} {json.dumps(msg)[:600]}\n")
    except Exception:  # the browser may be what failed
        pass
    sys.exit(1)


def ok(what):
    print(f"  ok - {what}", flush=True)


def shot(name):
    driver.save_screenshot(os.path.join(OUT, f"{name}.png"))


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    # The flags this machine's closed network needs (no updates, no
    # sync, no QUIC probes), a fresh profile, and root's --no-sandbox.
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1400,1000",
              f"--user-data-dir={os.path.join(OUT, 'profile')}"):
        opts.add_argument(a)
    # The listener's certificate is the test's own, self-signed.
    opts.set_capability("acceptInsecureCerts", True)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service("/usr/bin/chromedriver", log_path=os.path.join(OUT, "chromedriver.log"))
    return webdriver.Chrome(service=service, options=opts)


def wait(cond, timeout, why):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(cond)
    except TimeoutException:
        fail(f"{why} (after {timeout} s)")


def row(table, name):
    found = driver.find_elements(By.CSS_SELECTOR, f"#{table} tr[data-name='{name}']")
    return found[0] if found else None


def fill(tab, form_id, fields, summary=None):
    """Open a tab and its form, type into its fields; the form."""
    driver.find_element(By.CSS_SELECTOR, f".tabs [data-tab={tab}]").click()
    driver.find_element(By.CSS_SELECTOR, summary or f"#tab-{tab} summary").click()
    form = driver.find_element(By.ID, form_id)
    for name, keys in fields.items():
        form.find_element(By.NAME, name).send_keys(keys)
    return form


def submit(form, cond, timeout, why):
    """Submit; fail with the form's error line unless cond comes true."""
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.25).until(cond)
    except TimeoutException:
        fail(f"{why} (after {timeout} s): {form.find_element(By.CSS_SELECTOR, '.error').text!r}")


def image_state(name):
    found = driver.find_elements(By.CSS_SELECTOR, f"#image-table tr[data-name='{name}'] .state")
    try:
        return found[0].text if found else None
    except StaleElementReferenceException:
        return None


def click(table, name, action):
    """Click a row's button; the row may be rebuilt meanwhile (a change
    arrived): find it again."""
    sel = f"#{table} tr[data-name='{name}'] button[data-action={action}]"
    for _ in range(20):
        try:
            driver.find_element(By.CSS_SELECTOR, sel).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.1)
    fail(f"could not click {sel}")


def vm_state(name):
    found = driver.find_elements(By.CSS_SELECTOR, f"#vm-table tr[data-name='{name}'] .state")
    try:
        return found[0].text if found else None
    except StaleElementReferenceException:
        return None


def terminal_text():
    return driver.execute_script(
        "const r = document.querySelector('#term .xterm-rows');"
        "return r ? r.innerText : '';")


def totp(secret):
    return subprocess.run(["oathtool", "--totp", "-b", secret], check=True,
                          capture_output=True, text=True).stdout.strip()


driver = browser()
try:
    # ---- logging in: the password, then the code ------------------------------
    driver.get(URL + "/")
    form = wait(EC.visibility_of_element_located((By.ID, "login-form")), 30, "no login form")
    form.find_element(By.NAME, "user").send_keys(USER)
    form.find_element(By.NAME, "password").send_keys(os.environ["DASH_PASSWORD"])
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    otp = wait(EC.visibility_of_element_located((By.NAME, "otp")), 30,
               "the page did not ask for the one-time code")
    shot("01-login-otp")
    otp.send_keys(totp(os.environ["DASH_OTP_SECRET"]))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(EC.visibility_of_element_located((By.ID, "app")), 30,
         "not logged in: " + driver.find_element(By.ID, "login-error").text)
    wait(lambda d: USER in d.find_element(By.ID, "whoami").text, 10, "whoami not shown")
    token = driver.execute_script("return sessionStorage.getItem('hackcloud.token')")
    if not token or not token.startswith("hct_"):
        fail(f"no token in sessionStorage: {token!r}")
    if driver.get_cookies():
        fail(f"the page set cookies: {driver.get_cookies()}")
    ok("logged in with the password, then the TOTP code; the token is in sessionStorage, no cookie")

    # ---- a network, a key, an image, then a VM with them -------------------------
    # The prefix left out: the next free /64 of the tenant pool.
    submit(fill("networks", "net-form", {"name": "lan"}),
           lambda d: row("net-table", "lan"), 30, "the network did not appear")
    ok("created the network lan from its form")
    submit(fill("keys", "key-form", {"name": "laptop", "pubkey": os.environ["DASH_PUBKEY"]}),
           lambda d: row("key-table", "laptop"), 30, "the key did not appear")
    ok("added the SSH key laptop from its form")
    # An upload through the page: the three steps, with a progress bar.
    submit(fill("images", "upload-form", {"name": "blank", "disk": os.environ["DASH_DISK"]}),
           lambda d: image_state("blank") == "ready", 60, "the uploaded image did not become ready")
    ok("uploaded a raw disk from the page; the image is ready")

    vf = fill("vms", "vm-form", {"name": "web"}, "#vm-create summary")
    wait(lambda d: any(o.text.startswith("tiny") for o in
                       Select(vf.find_element(By.NAME, "image")).options), 10, "no image tiny to choose")
    Select(vf.find_element(By.NAME, "image")).select_by_visible_text("tiny (kernel)")
    vf.find_element(By.CSS_SELECTOR, "input[name=networks][value=lan]").click()
    submit(vf, lambda d: row("vm-table", "web"), 30, "the VM did not appear")
    shot("02-vm-created")
    # From here on the page is not reloaded and asks nothing: the table
    # must follow the VM through the event stream.
    t0 = time.time()
    wait(lambda d: vm_state("web") == "running", 300,
         f"the VM did not show as running (shows {vm_state('web')!r})")
    ok(f"the VM appeared and showed running {time.time() - t0:.0f} s later, without a reload")
    shot("03-vm-running")

    # ---- the console --------------------------------------------------------------
    click("vm-table", "web", "console")
    wait(EC.visibility_of_element_located((By.ID, "console")), 10, "no console dialog")
    wait(lambda d: d.find_element(By.ID, "console-state").text == "connected", 30,
         "the console did not connect: " + driver.find_element(By.ID, "console-state").text)
    # The guest's shell prompt is "HOSTNAME:DIR# " (guest/rootfs/etc/profile);
    # its context script names it after the VM.  It may still be booting:
    # Enter asks for a fresh prompt until one shows.
    prompt_at = time.time() + 180
    while "web:~#" not in terminal_text():
        if time.time() > prompt_at:
            fail(f"no prompt in the console: {terminal_text()[-500:]!r}")
        driver.find_element(By.CSS_SELECTOR, "#term .xterm-helper-textarea").send_keys(Keys.ENTER)
        time.sleep(2)
    ok("the console shows the guest's prompt (web:~#)")
    box = driver.find_element(By.CSS_SELECTOR, "#term .xterm-helper-textarea")
    # The form gave the VM the user's keys (all, by default, as the API
    # does): the guest's context script installed the one added above.
    box.send_keys("echo dash-$((6*7))-keys-$(grep -c alice@dashboard /root/.ssh/authorized_keys)")
    box.send_keys(Keys.ENTER)
    wait(lambda d: "\ndash-42-keys-" in terminal_text(), 60,
         f"the guest did not answer: {terminal_text()[-500:]!r}")
    shot("04-console")
    if "\ndash-42-keys-1" not in terminal_text():
        fail(f"the guest did not get the key: {terminal_text()[-300:]!r}")
    ok("typed a command in the browser; the guest's answer came back (dash-42), with the key")
    driver.find_element(By.ID, "console-close").click()
    wait(EC.invisibility_of_element_located((By.ID, "console")), 10, "the console stayed open")

    # ---- delete --------------------------------------------------------------------
    click("vm-table", "web", "delete")
    wait(EC.alert_is_present(), 10, "no confirmation asked")
    driver.switch_to.alert.accept()
    wait(lambda d: row("vm-table", "web") is None, 120, "the deleted VM stayed in the table")
    shot("05-vm-deleted")
    ok("deleted the VM; its row went")

    # ---- what the browser saw --------------------------------------------------------
    urls, websockets, events_requests, vm_lists = [], [], 0, 0
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            u = msg["params"]["request"]["url"]
            urls.append(u)
            events_requests += u.endswith("/v1/events")
            vm_lists += u.endswith("/v1/vms") and msg["params"]["request"]["method"] == "GET"
        elif msg["method"] == "Network.webSocketCreated":
            websockets.append(msg["params"]["url"])
            urls.append(msg["params"]["url"])
    with open(os.path.join(OUT, "urls.txt"), "w") as f:
        f.write("\n".join(urls) + "\n")
    if not any("/console" in u for u in websockets):
        fail(f"the browser's log shows no console WebSocket: {websockets}")
    leaked = [u for u in urls if token in u or token[4:] in u]
    if leaked:
        fail(f"the token was in a URL: {leaked}")
    ok(f"no URL of {len(urls)} requests and WebSockets held the token")
    if events_requests < 1:
        fail("the page never opened /v1/events")
    # One list when the stream opened; no polling after it.
    if vm_lists > 1:
        fail(f"the page asked for /v1/vms {vm_lists} times: polling")
    ok(f"live state came from /v1/events ({vm_lists} GET /v1/vms in all)")
    logs = driver.get_log("browser")
    with open(os.path.join(OUT, "console.log"), "w") as f:
        f.write("\n".join(f"{e['level']} {e['message']}" for e in logs) + "\n")
    # xterm.js's DOM renderer adds <style> elements, which the policy
    # refuses (app.css stands in for them); nothing else may be refused.
    refused = [e["message"] for e in logs if "Content Security Policy" in e["message"]
               and "inline style" not in e["message"]]
    if refused:
        fail(f"the page's policy refused: {refused}")
    errors = [e["message"] for e in logs if "Uncaught" in e["message"]]
    if errors:
        fail(f"the page threw: {errors}")
    ok("the Content-Security-Policy refused no script, connection or frame; no uncaught error")
finally:
    driver.quit()
