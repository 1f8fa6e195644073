-- Requests for bench/subscriber_callback.py, configured through the environment:
-- BENCH_METHOD (GET or POST), BENCH_BODY (file holding the POST body), BENCH_SIGNATURE
-- (X-Hub-Signature value), BENCH_PATHS (file with one path per line, each sent once, in order;
-- without it every request goes to the URL given to wrk).

local method = os.getenv("BENCH_METHOD") or "GET"
local body = nil
local headers = {}
local paths = {}
local next_path = 1

local function read(name)
  local file = assert(io.open(name, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

local body_file = os.getenv("BENCH_BODY")
if body_file and body_file ~= "" then
  body = read(body_file)
  headers["Content-Type"] = "application/atom+xml"
end
local signature = os.getenv("BENCH_SIGNATURE")
if signature and signature ~= "" then
  headers["X-Hub-Signature"] = signature
end
local paths_file = os.getenv("BENCH_PATHS")
if paths_file and paths_file ~= "" then
  for line in io.lines(paths_file) do
    paths[#paths + 1] = line
  end
end

request = function()
  local path = nil
  if #paths > 0 then
    path = paths[next_path]
    next_path = next_path % #paths + 1
  end
  return wrk.format(method, path, headers, body)
end
