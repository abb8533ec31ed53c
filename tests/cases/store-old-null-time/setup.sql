INSERT INTO Slides VALUES ('s1', 'one.svs', 'data/slides/one.svs');
INSERT INTO Annotations VALUES ('s1', 'first', 'second', '2021-01-01 00:00:00', 0, 0, 5, 5);
INSERT INTO Annotations VALUES ('s1', NULL, 'first', NULL, NULL, NULL, NULL, NULL);
