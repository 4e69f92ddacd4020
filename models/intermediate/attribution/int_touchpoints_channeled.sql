{#
    The touchpoints that count, each with its channel from the seed
    channel_rules (first matching rule by rule_order, else Unassigned).
    A touchpoint's source is its utm_source, else its referrer's host; both
    it and utm_medium are lowercased, absent being ''. The rules are
    evaluated once per distinct (source, medium, click ids present), not per
    touchpoint: a million touchpoints have a few hundred such signatures.
#}

{{ trackhouse.channeled_touchpoints(ref('trackhouse', 'int_touchpoints_cleaned')) }}
