-- wrk script: signed Learn365 webhook deliveries (see docs/PROTOCOL.md).
--
-- Every request is a CourseEnrollment delivery shaped like the stock .NET
-- sender's (2-space indent, CRLF line ends, members Id, Attempt, Properties,
-- Notifications; 1078 bytes), with its own Id (32 lowercase hex, unique
-- across threads, requests and runs) and an `ms-signature` header computed
-- per request: HMAC-SHA256 of the body, through LuaJIT's ffi into the
-- libcrypto that wrk is linked with.
--
-- Environment:
--   BENCH_SECRET   the shared secret (required)
--   BENCH_PATH     request path (default /api/webhooks/incoming/custom)
--   BENCH_CLOSE=1  send `Connection: close` (one request per connection)
--   BENCH_DISTINCT_LEARNERS=1
--                  every request's learner (Users[0].Id) is its own: the
--                  request's Id plus "0000", so the body keeps its length;
--                  for the enrollment tracker, which keeps one learner's
--                  events in order and so one at a time
--   BENCH_GET=1    no Lua work per request: wrk's own static request (a GET
--                  of the URL), to measure the client's ceiling; non2xx is
--                  then wrk's count of statuses > 399
--
-- done() prints one machine-readable line for bench/run:
--   BENCH_RESULT requests=N duration_us=N rps=N p50_us=N p99_us=N ...
--
-- Usage: BENCH_SECRET=... wrk -t1 -c50 -d10s -s bench/signed-post.lua URL

local ffi = require("ffi")

ffi.cdef[[
typedef struct evp_md_st EVP_MD;
typedef struct evp_mac_st EVP_MAC;
typedef struct evp_mac_ctx_st EVP_MAC_CTX;
typedef struct ossl_lib_ctx_st OSSL_LIB_CTX;
typedef struct ossl_param_st {
	const char *key;
	unsigned int data_type;
	void *data;
	size_t data_size;
	size_t return_size;
} OSSL_PARAM;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const void *d, size_t n, unsigned char *md,
                    unsigned int *md_len);
EVP_MAC *EVP_MAC_fetch(OSSL_LIB_CTX *libctx, const char *algorithm,
                       const char *properties);
EVP_MAC_CTX *EVP_MAC_CTX_new(EVP_MAC *mac);
int EVP_MAC_init(EVP_MAC_CTX *ctx, const void *key, size_t keylen,
                 const OSSL_PARAM params[]);
int EVP_MAC_update(EVP_MAC_CTX *ctx, const void *data, size_t datalen);
int EVP_MAC_final(EVP_MAC_CTX *ctx, unsigned char *out, size_t *outl,
                  size_t outsize);
int getpid(void);
]]

-- wrk itself links libcrypto, so its symbols are already in the process.
local function find_crypto()
	if pcall(function() return ffi.C.HMAC end) then
		return ffi.C
	end
	for _, name in ipairs({ "crypto", "libcrypto.so.3" }) do
		local ok, lib = pcall(ffi.load, name)
		if ok then
			return lib
		end
	end
	error("signed-post.lua: cannot find HMAC() in libcrypto")
end

local crypto = find_crypto()

local secret = os.getenv("BENCH_SECRET")
if secret == nil or secret == "" then
	error("signed-post.lua: BENCH_SECRET is not set")
end
local path = os.getenv("BENCH_PATH") or "/api/webhooks/incoming/custom"
local close = os.getenv("BENCH_CLOSE") == "1"
local plain_get = os.getenv("BENCH_GET") == "1"
local distinct_learners = os.getenv("BENCH_DISTINCT_LEARNERS") == "1"
local LEARNER = "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"

-- The body, split around the Id. Same bytes as tests' vector v1 apart from
-- the Id.
local CRLF = "\r\n"
local body_head = '{' .. CRLF .. '  "Id": "'
local body_tail = table.concat({
	'",',
	'  "Attempt": 1,',
	'  "Properties": {},',
	'  "Notifications": [',
	'    {',
	'      "Action": "CourseEnrollment",',
	'      "EnrollmentStatus": 0,',
	'      "EnrollmentStatusText": "Enrolled",',
	'      "Course": {',
	'        "SiteId": "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",',
	'        "WebId": "9a8b7c6d-5e4f-4321-9876-543210fedcba",',
	'        "Id": "c0ffee00-1234-4abc-9def-0123456789ab",',
	'        "Title": "Fire Safety Basics",',
	'        "Url": "https://contoso.sharepoint.com/sites/lms/FireSafety",',
	'        "CourseType": "Course",',
	'        "Published": true',
	'      },',
	'      "Users": [',
	'        {',
	'          "Id": "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6",',
	'          "DirectoryObjectId": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",',
	'          "EnrollmentId": "e1e2e3e4-f5f6-4a7b-8c9d-0a1b2c3d4e5f",',
	'          "LoginName": "i:0#.f|membership|alex@contoso.com",',
	'          "Title": "Alex Wilber",',
	'          "Department": "Operations",',
	'          "Email": "alex@contoso.com"',
	'        }',
	'      ],',
	'      "TimeStamp": "2024-05-01T10:15:30.123Z"',
	'    }',
	'  ]',
	'}',
}, CRLF)
local ID_LEN = 32
local body_len = #body_head + ID_LEN + #body_tail
-- The tail around the learner's Id, for BENCH_DISTINCT_LEARNERS.
local learner_at = body_tail:find(LEARNER, 1, true)
local tail_before = body_tail:sub(1, learner_at - 1)
local tail_after = body_tail:sub(learner_at + #LEARNER)

local mac = ffi.new("unsigned char[32]")
local mac_len = ffi.new("size_t[1]")
local hex = ffi.new("char[64]")
local HEX = ffi.new("const char[17]", "0123456789ABCDEF")

-- HMAC-SHA256 of s into mac[]: two ways, the same result.
--
-- One-shot HMAC() sets the key up again on every call: 2.4 us for 1 KiB on
-- this machine's OpenSSL 3, about a fifth of wrk's whole cost per request
-- (wrk then saturates near 77k req/s against nginx instead of 98k).
-- So, like bare-server, keep one EVP_MAC context with the key set once and
-- re-initialise it with a NULL key, which keeps the key (OpenSSL 3 only;
-- anything else falls back to HMAC()).
local function mac_oneshot(s)
	local sha256 = crypto.EVP_sha256()
	if crypto.HMAC(sha256, secret, #secret, s, #s, mac, nil) == nil then
		error("signed-post.lua: HMAC() failed")
	end
end

local function new_mac_reused()
	local ok, evp = pcall(function()
		return crypto.EVP_MAC_fetch(nil, "HMAC", nil)
	end)
	if not ok or evp == nil then
		return nil
	end
	local ctx = crypto.EVP_MAC_CTX_new(evp)
	local params = ffi.new("OSSL_PARAM[2]")
	params[0].key = "digest"
	params[0].data_type = 4			-- OSSL_PARAM_UTF8_STRING
	params[0].data = ffi.cast("void *", "SHA256")	-- a literal: never freed
	params[0].data_size = 6
	params[0].return_size = ffi.cast("size_t", -1)	-- OSSL_PARAM_UNMODIFIED
	if ctx == nil or crypto.EVP_MAC_init(ctx, secret, #secret, params) ~= 1 then
		return nil
	end
	return function(s)
		if crypto.EVP_MAC_init(ctx, nil, 0, nil) ~= 1 or
		   crypto.EVP_MAC_update(ctx, s, #s) ~= 1 or
		   crypto.EVP_MAC_final(ctx, mac, mac_len, 32) ~= 1 then
			error("signed-post.lua: EVP_MAC failed")
		end
	end
end

local function hex_mac()
	for i = 0, 31 do
		local b = mac[i]
		hex[2 * i] = HEX[bit.rshift(b, 4)]
		hex[2 * i + 1] = HEX[bit.band(b, 15)]
	end
	return ffi.string(hex, 64)
end

-- Pick the reused context if it gives the same MAC as HMAC() twice in a row.
local compute_mac = mac_oneshot
local mac_method = "HMAC()"
do
	local reused = new_mac_reused()
	if reused ~= nil then
		local probe = "signed-post.lua self-test"
		mac_oneshot(probe)
		local want = hex_mac()
		reused(probe)
		local got1 = hex_mac()
		reused(probe)
		if got1 == want and hex_mac() == want then
			compute_mac = reused
			mac_method = "EVP_MAC_reused"
		end
	end
end

-- Uppercase hex HMAC-SHA256 of s.
local function sign(s)
	compute_mac(s)
	return hex_mac()
end

-- Setup phase (main Lua state): number the threads.
local threads = {}

function setup(thread)
	table.insert(threads, thread)
	thread:set("thread_no", #threads)
end

-- Running phase (one Lua state per wrk thread).
local id_prefix
local counter = 0
local req_head
non2xx = 0

function init(args)
	-- Id = time, pid, thread number, per-thread counter: unique across
	-- threads and requests, and across runs against the same server
	-- (a deduplicating receiver must see every request as new).
	id_prefix = string.format("%08x%08x%08x", os.time() % 0x100000000,
				  ffi.C.getpid(), thread_no or 0)

	local h = {
		"POST " .. path .. " HTTP/1.1",
		"Host: " .. wrk.headers["Host"],
		"Content-Type: application/json; charset=utf-8",
		"Content-Length: " .. body_len,
	}
	if close then
		h[#h + 1] = "Connection: close"
	end
	-- Extra `wrk -H` headers, except the ones set here.
	local skip = { host = true, ["content-type"] = true,
		       ["content-length"] = true, ["ms-signature"] = true,
		       connection = close }
	for name, value in pairs(wrk.headers) do
		if not skip[name:lower()] then
			h[#h + 1] = name .. ": " .. value
		end
	end
	h[#h + 1] = "ms-signature: sha256="
	req_head = table.concat(h, CRLF)
end

function request()
	counter = counter + 1
	local id = id_prefix .. string.format("%08x", counter % 0x100000000)
	local body
	if distinct_learners then
		body = body_head .. id .. tail_before .. id .. "0000" .. tail_after
	else
		body = body_head .. id .. body_tail
	end
	return req_head .. sign(body) .. CRLF .. CRLF .. body
end

function response(status, headers, body)
	if status < 200 or status > 299 then
		non2xx = non2xx + 1
	end
end

-- Done phase (main Lua state again).
function done(summary, latency, requests)
	local e = summary.errors
	local n = 0
	for _, t in ipairs(threads) do
		n = n + (t:get("non2xx") or 0)
	end
	if plain_get then
		n = e.status
	end
	local secs = summary.duration / 1e6
	io.write(string.format(
		"BENCH_RESULT requests=%d duration_us=%d rps=%.1f " ..
		"p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d " ..
		"status_errors=%d connect_errors=%d read_errors=%d " ..
		"write_errors=%d timeouts=%d body_bytes=%d client_mac=%s\n",
		summary.requests, summary.duration,
		secs > 0 and summary.requests / secs or 0,
		latency:percentile(50), latency:percentile(90),
		latency:percentile(99), latency.max, n,
		e.status, e.connect, e.read, e.write, e.timeout, body_len,
		mac_method))
end

-- wrk sends its static request, and skips the response parsing, when these
-- globals are nil after init.
if plain_get then
	request = nil
	response = nil
end
