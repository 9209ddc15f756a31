"""Fairness simulation: legitimate clients within their plans beside abusive ones.

Run: ``.venv/bin/python bench/ratelimit_fairness.py [--hours 2] [--seed 7]``. Simulated
time (an injected clock), Meterline's default plans and a global tier, memory storage.
Legitimate orgs send Poisson traffic at 80 % of their plan's hourly rate with occasional
bursts well under the plan's burst; abusive orgs send ten times their rate. Prints the
legitimate success rate (target >= 99.95 %) and what each abusive org got against the
most its plan allows over the run (rate x time + burst), beside the naive baseline of
no limiter (abusers get everything they send).
"""

from __future__ import annotations

import argparse
import heapq
import random

from meterline.clock import FrozenClock
from meterline.plans import DEFAULT_PLANS, PlanName
from meterline.ratelimit import Algorithm, Identity, MemoryStorage, PlanBook, RateLimiter, Rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--legit", type=int, default=40, help="legitimate orgs")
    parser.add_argument("--abusive", type=int, default=5, help="abusive orgs")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    start = 1_700_000_000.0
    clock = FrozenClock(start)
    # the platform's own ceiling, sized for the paying customers' plans
    ceiling = Rule("global", 300_000, 3600, Algorithm.SLIDING_WINDOW)
    limiter = RateLimiter(MemoryStorage(), [ceiling], plans=PlanBook(), clock=clock)
    plans = [PlanName.BASIC, PlanName.PROFESSIONAL]
    clients: list[tuple[str, str, float, bool]] = []  # org, plan, requests per second, abusive
    for n in range(args.legit):
        plan = plans[n % 2]
        clients.append(
            (f"legit-{n}", plan, 0.8 * DEFAULT_PLANS[plan].requests_per_hour / 3600, False)
        )
    for n in range(args.abusive):
        plan = plans[n % 2]
        clients.append(
            (f"abuser-{n}", plan, 10 * DEFAULT_PLANS[plan].requests_per_hour / 3600, True)
        )
    end = start + args.hours * 3600
    queue = [(start + rng.expovariate(rate), i) for i, (_, _, rate, _) in enumerate(clients)]
    heapq.heapify(queue)
    sent = [0] * len(clients)
    admitted = [0] * len(clients)
    while queue:
        at, i = heapq.heappop(queue)
        if at >= end:
            continue
        org, plan, rate, abusive = clients[i]
        clock.now = at
        # a legitimate client occasionally sends a small burst (a page load, a batch job)
        burst = 1 if abusive or rng.random() > 0.002 else rng.randint(5, 20)
        for _ in range(burst):
            sent[i] += 1
            admitted[i] += limiter.hit(Identity(org=org, consumer=org, plan=plan)).allowed
        heapq.heappush(queue, (at + rng.expovariate(rate), i))
    legit = [k for k, c in enumerate(clients) if not c[3]]
    abusers = [k for k, c in enumerate(clients) if c[3]]
    ok = sum(admitted[k] for k in legit)
    total = sum(sent[k] for k in legit)
    print(f"simulated {args.hours:g} h, {sum(sent):,} requests, {len(clients)} orgs")
    print(f"legitimate success: {ok:,}/{total:,} = {100 * ok / total:.3f} %  (target >= 99.95 %)")
    for k in abusers:
        org, plan, rate, _ = clients[k]
        limits = DEFAULT_PLANS[plan]
        bound = limits.requests_per_hour * args.hours + limits.burst
        print(
            f"{org} ({plan}): sent {sent[k]:,}, admitted {admitted[k]:,} "
            f"<= bound {bound:,.0f}: {admitted[k] <= bound}  "
            f"(no limiter: {sent[k]:,}, {sent[k] / bound:.1f}x the plan)"
        )


if __name__ == "__main__":
    main()
