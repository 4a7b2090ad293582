"""Schemathesis hooks of `.ci/contract`: the rules between values that JSON Schema cannot state.

Each rule is written in the description of the schema it belongs to in `/openapi.json`, and
the server answers a request that breaks it with a 400 and a code of the error table (its
integration tests check those answers). A schema-valid case that breaks one is brought within
it here, so that `positive_data_acceptance` judges what the document promises; schema-violating
cases are sent as generated. The rules:

- a price range: `min_price` is at most `max_price` (query parameters, `POST /v1/search`, rule
  conditions; `invalid_range`, `invalid_condition`);
- re-ranking rules: each item pinned once, each position fixed once over `pin` and
  `promotions` (`duplicate_pin`, `duplicate_position`);
- an experiment's arms have distinct names (`invalid_experiment`);
- an impression's `propensities`, when given, are one per item of `items` (`invalid_value`).
"""

import json

import schemathesis


def _positive(case):
    meta = getattr(case, "meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    return bool(mode is not None and mode.is_positive)


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _price_range(values):
    if not isinstance(values, dict):
        return
    low, high = _number(values.get("min_price")), _number(values.get("max_price"))
    if low is not None and high is not None and low > high:
        values["min_price"], values["max_price"] = values["max_price"], values["min_price"]


def _rules(rules):
    if not isinstance(rules, dict):
        return
    for key in ("filter", "bury"):
        for condition in rules.get(key) or []:
            _price_range(condition)
    for key in ("boost", "promotions"):
        for rule in rules.get(key) or []:
            if isinstance(rule, dict):
                _price_range(rule.get("when"))
    fixed, pinned = set(), set()
    if isinstance(rules.get("pin"), list):
        pins = []
        for pin in rules["pin"]:
            if isinstance(pin, dict) and pin.get("item") not in pinned and pin.get("position") not in fixed:
                pinned.add(pin.get("item"))
                fixed.add(pin.get("position"))
                pins.append(pin)
        rules["pin"] = pins
    if isinstance(rules.get("promotions"), list):
        promotions = []
        for promotion in rules["promotions"]:
            if not isinstance(promotion, dict) or not isinstance(promotion.get("positions"), list):
                continue
            positions = [p for p in promotion["positions"] if p not in fixed]
            if positions:
                fixed.update(positions)
                promotion["positions"] = positions
                promotions.append(promotion)
        rules["promotions"] = promotions


def _rules_parameter(query):
    """A `rules` query parameter: JSON text, or the value before serialization."""
    value = query.get("rules")
    if isinstance(value, str):
        try:
            rules = json.loads(value)
        except ValueError:
            return
        _rules(rules)
        query["rules"] = json.dumps(rules)
    else:
        _rules(value)


def _experiment(body):
    if not isinstance(body, dict) or not isinstance(body.get("arms"), list):
        return
    names = set()
    for index, arm in enumerate(body["arms"]):
        if not isinstance(arm, dict):
            continue
        _rules(arm.get("rules"))
        name, attempt = arm.get("name"), 0
        while name in names:
            name, attempt = f"arm-{index}-{attempt}", attempt + 1
        names.add(name)
        arm["name"] = name


def _events(body):
    for event in body if isinstance(body, list) else []:
        if not isinstance(event, dict):
            continue
        propensities, items = event.get("propensities"), event.get("items")
        if isinstance(propensities, list) and propensities:
            shown = len(items) if isinstance(items, list) else 0
            if shown == 0:
                event["propensities"] = []
            elif len(propensities) != shown:
                event["propensities"] = (propensities * shown)[:shown]


@schemathesis.hook
def map_case(context, case):
    if not _positive(case):
        return case
    if isinstance(case.query, dict):
        _price_range(case.query)
        _rules_parameter(case.query)
    route = (case.method.upper(), case.operation.path)
    if route == ("POST", "/v1/search") and isinstance(case.body, dict):
        _price_range(case.body)
        _rules(case.body.get("rules"))
    elif route == ("POST", "/v1/experiments"):
        _experiment(case.body)
    elif route == ("POST", "/v1/events"):
        _events(case.body)
    return case
