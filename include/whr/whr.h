/*
 * whr: receive ASP.NET WebHooks (Learn365) deliveries and hand each event
 * to C callbacks. Include this header; link with `pkg-config --libs whr`.
 */
#ifndef WHR_WHR_H
#define WHR_WHR_H

#include <whr/version.h>
#include <whr/log.h>
#include <whr/event.h>
#include <whr/handler.h>
#include <whr/tx.h>
#include <whr/receiver.h>
#include <whr/signature.h>
#include <whr/lms365.h>
#include <whr/plugin.h>

#endif /* WHR_WHR_H */
