"""Online serving of the champion (`recause api`): the HTTP app, its model holder with hot swap, the exploration
policies whose propensities go to the exposure log, and the event intake that feeds the next retraining."""
