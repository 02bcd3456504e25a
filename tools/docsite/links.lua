-- Pandoc filter for clipnb's offline docs site: links that nbdev writes for the published site
-- (https://clipnb.github.io/clipnb/score.html#x) or to notebooks (10_score.ipynb) point at the pages
-- of this build; show_doc's `{target="_blank" style=...}` source links keep the target, lose the inline style.
local site, pages = '', {}
local function read_meta(m)
  if m['site-url'] then site = pandoc.utils.stringify(m['site-url']):gsub('/$', '') end
  for k, v in pairs(m['site-pages'] or {}) do pages[k] = pandoc.utils.stringify(v) end
end
local function fix(el)
  local t = el.target
  if site ~= '' and t:sub(1, #site + 1) == site .. '/' then t = t:sub(#site + 2) end
  local base, frag = t:match('^([^#]*)(#?.*)$')
  if pages[base] then t = pages[base] .. frag end
  el.target = t
  if el.attributes['style'] then el.attributes['style'] = nil; el.classes:insert('source-link') end
  return el
end
return {{Meta = read_meta}, {Link = fix}}
