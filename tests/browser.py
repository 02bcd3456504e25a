"""Headless Chromium over a local http.server, for the docs-site and report tests: what a person sees of a page.

`check_page` returns every problem a reader would see on a page: text nbdev or Quarto should have
consumed (`#|` cell options, `{target=` link attributes, `:::` fences, front-matter keys), no `<h1>`,
an image that did not load, a Python traceback, a script error; plus the page's ids and its links
within the site, which `check_links` resolves once every page is loaded.
"""
import functools, http.server, json, os, shutil, threading, urllib.parse
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = os.environ.get('CLIPNB_CHROMIUM', '/usr/bin/chromium')
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']
RAW = ('#|', '{target=', ':::', 'output-file:', 'description: "')

def missing_tools()->list:
    "The programs the browser tests need that this machine lacks."
    miss = [] if Path(CHROMIUM).exists() else [f'chromium ({CHROMIUM})']
    if shutil.which('pandoc') is None: miss.append('pandoc')
    try: import playwright.sync_api  # noqa: F401
    except ImportError: miss.append('playwright (pip)')
    return miss

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

@contextmanager
def serve(folder):
    "Serve `folder` on a free loopback port; yields the base URL."
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(folder)))
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    try: yield f'http://127.0.0.1:{srv.server_port}/'
    finally: srv.shutdown(); srv.server_close()

@contextmanager
def chromium():
    "A headless Debian Chromium driven by Playwright (no browser download)."
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try: yield b
        finally: b.close()

_SCAN = """() => {
  const raw = %s, bad = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    if (n.parentElement.closest('code, pre, script, style')) continue;
    for (const r of raw) if (n.nodeValue.includes(r)) bad.push('raw ' + JSON.stringify(r) + ' in text: ' + n.nodeValue.trim().slice(0, 80));
  }
  for (const p of document.querySelectorAll('pre'))
    for (const l of p.innerText.split('\\n')) if (/^\\s*#\\|/.test(l)) bad.push('cell option left in code: ' + l.trim());
  const text = document.body.innerText;
  if (text.includes('Traceback (most recent call last)')) bad.push('a Python traceback in the page');
  if (!document.querySelector('h1')) bad.push('no <h1>');
  for (const i of document.images) if (!(i.complete && i.naturalWidth > 0)) bad.push('broken image: ' + i.getAttribute('src').slice(0, 80));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  return {bad, links, ids: [...document.querySelectorAll('[id]')].map(e => e.id), h1: [...document.querySelectorAll('h1')].map(e => e.innerText)};
}""" % json.dumps(list(RAW))

def check_page(page, url:str)->dict:
    "Load `url` in `page` (a Playwright page) and return {bad: [problems], links, ids, h1}."
    errors = []
    page.on('pageerror', lambda e: errors.append(f'script error: {e}'))
    r = page.goto(url, wait_until='load')
    if r is None or r.status != 200: return dict(bad=[f'HTTP {r.status if r else "no response"}'], links=[], ids=[], h1=[])
    out = page.evaluate(_SCAN); out['bad'] += errors
    return out

def check_links(results:dict, base:str)->list:
    "Links within the site (`base`) whose page was not loaded or does not exist, or whose #fragment is no id of that page."
    bad = []
    for src, r in results.items():
        for href in r['links']:
            if not href.startswith(base): continue
            u = urllib.parse.urlsplit(href); target = urllib.parse.urlunsplit(u._replace(fragment=''))
            if target not in results: bad.append(f'{src}: link to {href} (no such page)'); continue
            frag = urllib.parse.unquote(u.fragment)
            if frag and frag not in results[target]['ids']: bad.append(f'{src}: link to {href} (no #{frag} there)')
    return bad
