"""Off-policy evaluation: estimators, reward models, policies and the relative-error protocol."""
