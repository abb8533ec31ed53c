-- tiles.lua: wrk script that walks the tiles of the five finest Deep Zoom
-- levels of a slide, so that requests go to many distinct tiles; each wrk
-- thread starts at its own offset.  TILE_ORDER=shuffled (the default)
-- visits them in a fixed random order, the worst case for every cache;
-- TILE_ORDER=rows visits each level row by row, as a viewer panning over
-- the slide does, so neighbouring tiles follow each other;
-- TILE_ORDER=revisit keeps to 300 of the shuffled tiles, as several
-- viewers looking at the same slide do.
--
-- Environment: TILE_PREFIX (URL up to the level), TILE_SUFFIX (after the
-- row, e.g. ".jpeg"), TILE_WIDTH and TILE_HEIGHT (Deep Zoom full size),
-- TILE_SIZE (254 unless the server has its own).

local prefix = os.getenv("TILE_PREFIX")
local suffix = os.getenv("TILE_SUFFIX")
local width = tonumber(os.getenv("TILE_WIDTH"))
local height = tonumber(os.getenv("TILE_HEIGHT"))
local tile = tonumber(os.getenv("TILE_SIZE") or "254")

-- Deep Zoom levels: the full size is the top; each level below halves it.
local top = 0
do
  local w, h = width, height
  while w > 1 or h > 1 do
    w, h = math.ceil(w / 2), math.ceil(h / 2)
    top = top + 1
  end
end

local paths = {}
for level = top - 4, top do
  local scale = 2 ^ (top - level)
  local w, h = math.ceil(width / scale), math.ceil(height / scale)
  for row = 0, math.ceil(h / tile) - 1 do
    for col = 0, math.ceil(w / tile) - 1 do
      paths[#paths + 1] = prefix .. level .. "/" .. col .. "_" .. row ..
                          suffix
    end
  end
end

-- The same shuffle in every thread and every run.
local order = os.getenv("TILE_ORDER") or "shuffled"
if order ~= "rows" then
  math.randomseed(42)
  for i = #paths, 2, -1 do
    local j = math.random(i)
    paths[i], paths[j] = paths[j], paths[i]
  end
end
if order == "revisit" then
  for i = #paths, 301, -1 do
    paths[i] = nil
  end
end

local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  position = (id or 0) * math.floor(#paths / 2)
end

function request()
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end
