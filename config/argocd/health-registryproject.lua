-- Argo CD health of a registry.aisp.dev RegistryProject (a Harbor project), from its status conditions.
-- Healthy: Ready=True for the current generation. Degraded: Degraded=True, or Ready=False for a reason
-- the operator cannot fix by retrying. Progressing: anything else (not observed yet, still provisioning).
local failures = {
  InvalidSpec = true,
  NeedsHarbor = true,
  ApplyFailed = true,
  Conflict = true,
}

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

local hs = { status = "Progressing", message = "Waiting for the operator to observe the RegistryProject" }
local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil then
  return hs
end
if generation ~= nil and status.observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local ready = condition(status, "Ready")
local degraded = condition(status, "Degraded")
local progressing = condition(status, "Progressing")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
elseif ready == nil then
  hs.message = "Waiting for the Ready condition"
elseif ready.status == "False" and failures[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready)
elseif ready.status == "True" and (progressing == nil or progressing.status ~= "True") then
  hs.status = "Healthy"
  hs.message = describe(ready)
elseif progressing ~= nil and progressing.status == "True" then
  hs.message = describe(progressing)
else
  hs.message = describe(ready)
end
return hs
