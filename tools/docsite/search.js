// The sidebar's search box: filters the entries of search-index.js (every exported name and every
// section heading of the site), with no server.
document.addEventListener('DOMContentLoaded', () => {
  const box = document.getElementById('search'), out = document.getElementById('search-results');
  if (!box || !window.CLIPNB_SEARCH) return;
  box.addEventListener('input', () => {
    const q = box.value.trim().toLowerCase(); out.innerHTML = '';
    if (q.length < 2) return;
    const hits = window.CLIPNB_SEARCH.filter(e => e.t.toLowerCase().includes(q))
      .sort((a, b) => (a.t.toLowerCase().startsWith(q) ? 0 : 1) - (b.t.toLowerCase().startsWith(q) ? 0 : 1)).slice(0, 25);
    for (const e of hits) {
      const li = document.createElement('li'), a = document.createElement('a');
      a.href = e.u; a.textContent = e.t; const s = document.createElement('small'); s.textContent = ' ' + e.p;
      a.appendChild(s); li.appendChild(a); out.appendChild(li);
    }
    if (!hits.length) out.innerHTML = '<li><small>no match</small></li>';
  });
});
