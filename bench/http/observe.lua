-- wrk script: every request posts a lab observation that changes a lab's state, so every
-- request appends an event. Each wrk thread writes its own labs. The bearer token comes from
-- LABLET_TOKEN.
local counter = 0
local thread_number = 0
local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. (os.getenv("LABLET_TOKEN") or ""),
}

request = function()
  counter = counter + 1
  local lab = counter % 2000
  local state = (math.floor(counter / 2000) % 2 == 0) and "STARTED" or "STOPPED"
  local body = string.format(
    '{"worker_id":"6f9619ff-8b86-d011-b42d-00c04fc964ff","lab_id":"lab-%d-%d","state":"%s","title":"load"}',
    thread_number, lab, state)
  return wrk.format("POST", "/api/v1/lab-records/observations", headers, body)
end

-- Non-2xx answers are counted by wrk itself ("Non-2xx or 3xx responses").
